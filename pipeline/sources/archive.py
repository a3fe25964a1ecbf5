"""Archive source (.zip, .tar, .tar.gz/.tgz): safe extraction, then an incremental mirror.

Every member is checked before anything is written: no absolute paths or `..`, no links pointing
outside the archive, no device files, at most `max_archive_members` members and
`max_archive_bytes` uncompressed bytes. Tar members are extracted with tarfile's "data" filter as
a second line of defence. The archive is only re-extracted when its sha256 changed.
"""

from __future__ import annotations

import calendar
import logging
import os
import posixpath
import stat
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tqdm import tqdm

from pipeline.errors import DataError
from pipeline.sources.files import is_data_file, safe_relpath, sha256_file
from pipeline.sources.mirror import Mirror, SyncSummary

log = logging.getLogger(__name__)
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")
_CORRUPT = (zipfile.BadZipFile, tarfile.ReadError, tarfile.CompressionError, EOFError, zlib.error)


@dataclass(frozen=True)
class ArchiveLimits:
    max_bytes: int
    max_members: int


def is_archive(path: str | Path) -> bool:
    return str(path).lower().endswith(ARCHIVE_SUFFIXES)


def sync_archive(path: Path, raw_dir: Path, source: str, limits: ArchiveLimits) -> SyncSummary:
    """Mirror the data files of an archive into raw_dir; a no-op when its sha256 is unchanged."""
    if not path.is_file():
        raise DataError(f"data.source {source!r} does not exist; check the archive path in params.yaml")
    digest = sha256_file(path)
    with Mirror(raw_dir, kind="archive", source=source, extra={"archive_sha256": digest}) as mirror:
        if mirror.same_source():
            log.info("archive %s unchanged (sha256 %s...): not extracting", path.name, digest[:12])
            mirror.keep_all()
            return mirror.commit()
        extracted = extract_data_files(path, mirror.staging, limits)
        if not extracted:
            raise DataError(f"archive {path} holds no image files (.png/.jpg/.jpeg/.tif/.bmp/.npz)")
        for rel in tqdm(extracted, desc="ingest: hash", unit="file", disable=None):
            sha = sha256_file(mirror.staging / rel)
            if mirror.keep_if_unchanged(rel, f"sha256:{sha}"):
                mirror.discard(rel)
            else:
                mirror.add(rel, f"sha256:{sha}", sha)
        return mirror.commit()


def extract_data_files(path: Path, dest: Path, limits: ArchiveLimits) -> list[str]:
    """Safely extract the data files of a zip/tar archive under dest; returns their relpaths."""
    try:
        if str(path).lower().endswith(".zip"):
            return _extract_zip(path, dest, limits)
        return _extract_tar(path, dest, limits)
    except _CORRUPT as exc:
        raise DataError(f"archive {path} is corrupt or truncated ({exc}); download it again") from exc


def _unsafe(path: Path, name: str, why: str) -> DataError:
    return DataError(
        f"archive {path} has an unsafe member {name!r} ({why}); refusing to extract it. "
        "Rebuild the archive with plain files under relative paths"
    )


def _member_rel(path: Path, name: str) -> str:
    try:
        return safe_relpath(name)
    except ValueError as exc:
        raise _unsafe(path, name, str(exc)) from None


def _check_link(path: Path, rel: str, target: str, symlink: bool) -> None:
    """Reject a link whose target leaves the extraction folder."""
    joined = posixpath.join(posixpath.dirname(rel), target) if symlink else target
    resolved = posixpath.normpath(joined)
    if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
        raise _unsafe(path, rel, f"link to {target!r} outside the archive")


def _check_totals(path: Path, members: int, total: int, limits: ArchiveLimits) -> None:
    if members > limits.max_members:
        raise DataError(
            f"archive {path} has more than {limits.max_members} members; "
            "raise data.max_archive_members if it is genuine"
        )
    if total > limits.max_bytes:
        raise DataError(
            f"archive {path} unpacks to more than {limits.max_bytes} bytes; "
            "raise data.max_archive_bytes if it is genuine"
        )


def _bounded_copy(src: IO[bytes], dst: IO[bytes], limit: int, path: Path, name: str) -> None:
    written = 0
    while chunk := src.read(1 << 20):
        written += len(chunk)
        if written > limit:
            raise _unsafe(path, name, "unpacks to more bytes than its header declares")
        dst.write(chunk)


def _extract_zip(path: Path, dest: Path, limits: ArchiveLimits) -> list[str]:
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        _check_totals(path, len(infos), sum(i.file_size for i in infos), limits)
        chosen: list[tuple[zipfile.ZipInfo, str]] = []
        for info in infos:
            if info.is_dir():
                continue
            rel = _member_rel(path, info.filename)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                _check_link(path, rel, zf.read(info).decode("utf-8", "replace"), symlink=True)
                continue  # links are never data
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
                raise _unsafe(path, info.filename, "device or fifo")
            if is_data_file(rel):
                chosen.append((info, rel))
        for info, rel in tqdm(chosen, desc="ingest: unzip", unit="file", disable=None):
            out = dest / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(out, "wb") as dst:
                _bounded_copy(src, dst, info.file_size, path, info.filename)
            stamp = calendar.timegm((*info.date_time, 0, 0, 0))
            os.utime(out, (stamp, stamp))
        return [rel for _, rel in chosen]


def _extract_tar(path: Path, dest: Path, limits: ArchiveLimits) -> list[str]:
    with tarfile.open(path, "r:*") as tf:
        members: list[tarfile.TarInfo] = []
        total = 0
        for member in tf:  # streams; stops early on a bomb
            members.append(member)
            total += member.size if member.isfile() else 0
            _check_totals(path, len(members), total, limits)
        chosen: list[tarfile.TarInfo] = []
        for member in members:
            if member.isdir():
                continue
            rel = _member_rel(path, member.name)
            if member.issym() or member.islnk():
                _check_link(path, rel, member.linkname, symlink=member.issym())
                continue
            if not member.isfile():
                raise _unsafe(path, member.name, "device, fifo or other special file")
            if is_data_file(rel):
                chosen.append(member.replace(name=rel, deep=False))
        try:
            for member in tqdm(chosen, desc="ingest: untar", unit="file", disable=None):
                tf.extract(member, dest, filter="data")
        except tarfile.FilterError as exc:
            raise _unsafe(path, exc.tarinfo.name, str(exc)) from exc
        return [m.name for m in chosen]
