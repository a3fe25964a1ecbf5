"""Archive source (.zip, .tar, .tar.gz/.tgz): safe extraction, then an incremental mirror.

Every member is checked before anything is written: no absolute paths or `..`, no links leaving
the archive, no device files, no encrypted members, no names over 255 bytes or a name that is
both a file and a folder, at most `max_archive_members` members, and an unpacked size that fits
the free disk space of the project (counting DVC's cache copy of new files) and the optional cap
`data.max_archive_bytes`. A name appearing twice (`tar rf` of an updated file) is read as tar
reads it: the last member wins (logged). Links inside the archive are followed (links.py).
The archive is only re-extracted when its sha256 changed.
"""

from __future__ import annotations

import logging
import os
import tarfile
import zipfile
import zlib
from pathlib import Path
from typing import IO

from tqdm import tqdm

from pipeline.core.errors import DataError
from pipeline.sources import archive_scan
from pipeline.sources.archive_scan import ArchiveLimits, check_space
from pipeline.sources.files import check_tree, is_data_file, is_ignored, sha256_file
from pipeline.sources.links import Node, Resolver
from pipeline.sources.mirror import Mirror, Prepare, SyncSummary

log = logging.getLogger(__name__)
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")
_CORRUPT = (zipfile.BadZipFile, tarfile.ReadError, tarfile.CompressionError, EOFError, zlib.error)


def is_archive(path: str | Path) -> bool:
    return str(path).lower().endswith(ARCHIVE_SUFFIXES)


def plan(path: Path, nodes: dict[str, Node], dirs: set[str], mirror: Mirror, limits: ArchiveLimits) -> dict:
    """{output rel: file node}: data files plus what links stand for; all checks before writing."""
    what = f"archive {path}"
    resolver = Resolver(nodes, dirs, what, limits.max_members)
    out: dict[str, Node] = {}
    followed = 0
    for rel, node in nodes.items():
        if is_ignored(rel):
            mirror.skip("hidden")
            continue
        pairs = [(rel, rel)] if node.kind == "file" else resolver.materialise(rel)
        if pairs is None:
            mirror.skip("dangling-link")
            log.warning("%s: link %s -> %s points to nothing in the archive; skipped", what, rel, node.target)
            continue
        followed += node.kind != "file"
        for out_rel, src in pairs:
            if is_data_file(out_rel):
                out[out_rel] = nodes[src]
            elif node.kind == "file":
                mirror.skip("not-an-image-name")
    mirror.skip("dangling-link", resolver.dangling)
    if followed:
        log.info("%s: followed %d link member(s) inside the archive", what, followed)
    check_tree(out, what)
    encrypted = sorted(rel for rel, node in out.items() if node.encrypted)
    if encrypted:
        raise DataError(
            f"{what} has {len(encrypted)} encrypted member(s) (e.g. {encrypted[0]!r}); medpipe cannot decrypt "
            "archives: extract it with its password and set data.source to the folder"
        )
    prev = mirror.prev.get("files", {})
    total = sum(n.size for n in out.values())
    new = sum(n.size for rel, n in out.items() if rel not in prev or prev[rel].bytes != n.size)
    check_space(path, total, new, limits)
    return out


def _bounded_copy(src: IO[bytes], dst: IO[bytes], limit: int, path: Path, name: str) -> None:
    written = 0
    while chunk := src.read(1 << 20):
        written += len(chunk)
        if written > limit:
            raise archive_scan.unsafe(path, name, "unpacks to more bytes than its header declares")
        dst.write(chunk)


def extract(path: Path, opened, out: dict[str, Node], mirror: Mirror) -> None:
    """Write every planned output into the staging folder (streamed in archive order)."""
    order = sorted(out.items(), key=lambda item: archive_scan.offset(item[1].handle))
    for rel, node in tqdm(order, desc="ingest: unpack", unit="file", disable=None):
        dest = mirror.staged_path(rel)
        with archive_scan.open_member(opened, node.handle) as src, open(dest, "wb") as dst:
            _bounded_copy(src, dst, node.size, path, node.rel)
        os.utime(dest, (node.mtime, node.mtime))


def sync_archive(
    path: Path, raw_dir: Path, source: str, limits: ArchiveLimits, prepare: Prepare | None = None
) -> SyncSummary:
    """Mirror the data files of an archive into raw_dir; a no-op when its sha256 is unchanged."""
    if not path.is_file():
        raise DataError(f"data.source {source!r} does not exist; check the archive path in params.yaml")
    digest = sha256_file(path)
    extra = {"archive_sha256": digest}
    with Mirror(raw_dir, kind="archive", source=source, extra=extra, prepare=prepare) as mirror:
        if mirror.same_source():
            log.info("archive %s unchanged (sha256 %s...): not extracting", path.name, digest[:12])
            mirror.keep_all()
            return mirror.commit()
        try:
            with archive_scan.open_archive(path) as opened:
                nodes, dirs = archive_scan.scan(path, opened, mirror, limits)
                out = plan(path, nodes, dirs, mirror, limits)
                if not out:
                    raise DataError(f"archive {path} holds no image files (.png/.jpg/.jpeg/.tif/.bmp/.npz)")
                extract(path, opened, out, mirror)
        except _CORRUPT as exc:
            raise DataError(f"archive {path} is corrupt or truncated ({exc}); download it again") from exc
        except NotImplementedError as exc:  # zip compression methods Python lacks (deflate64, ppmd, ...)
            raise DataError(
                f"archive {path} uses an unsupported compression ({exc}); repack it as zip/deflate or tar.gz"
            ) from exc
        for rel in tqdm(sorted(out), desc="ingest: hash", unit="file", disable=None):
            sha = sha256_file(mirror.staging / rel)
            if mirror.keep_if_unchanged(rel, f"sha256:{sha}"):
                mirror.discard(rel)
            else:
                mirror.add(rel, f"sha256:{sha}", sha)
        return mirror.commit()
