"""Local directory source: mirror the data files of a folder into data/raw (rsync-like).

Links follow the archive rule: a symlink (to a file or a folder, class folders included) that
resolves inside the source folder is followed; one that leaves it is refused with a message
naming it, before anything is read; a symlink loop is one line too. Broken links, hidden files
and non-image files are skipped and counted. Names that are not valid UTF-8 are stored with
those bytes read as Latin-1 (see files.utf8_name).
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from pipeline.core.errors import DataError
from pipeline.sources.files import check_tree, is_data_file, is_ignored, log_renamed, utf8_name
from pipeline.sources.mirror import Mirror, Prepare, SyncSummary

log = logging.getLogger(__name__)


@dataclass
class Listing:
    files: dict[str, tuple[str, os.stat_result]] = field(default_factory=dict)  # rel -> (path, stat)
    skipped: dict[str, int] = field(default_factory=dict)
    renamed: dict[str, str] = field(default_factory=dict)

    def skip(self, reason: str, example: str) -> None:
        if not self.skipped.get(reason):
            log.info("skipping %s (%s)", example, reason)
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _refuse_outside(what: str, outside: list[tuple[str, str]]) -> None:
    shown = ", ".join(f"{rel} -> {target}" for rel, target in outside[:3])
    more = f" and {len(outside) - 3} more" if len(outside) > 3 else ""
    raise DataError(
        f"{what} has links leaving it: {shown}{more}; medpipe reads nothing outside data.source: "
        "copy those files in or remove the links"
    )


def scan(root: Path, what: str) -> Listing:
    """Every file under root with links resolved by the rule above; raises on outside links/loops."""
    real_root = os.path.realpath(root)
    listing, outside = Listing(), []
    real_of = {str(root): real_root}  # logical dir -> real dir, for loop checks
    for dirpath, dirnames, filenames in os.walk(str(root), followlinks=True):
        rel_dir = os.path.relpath(dirpath, str(root)).replace(os.sep, "/")
        prefix = "" if rel_dir == "." else rel_dir + "/"
        dirnames.sort()
        for name in list(dirnames):
            path, rel = os.path.join(dirpath, name), prefix + name
            if is_ignored(rel):
                dirnames.remove(name)
                listing.skip("hidden", rel)
                continue
            real = os.path.realpath(path)
            real_of[path] = real
            if not os.path.islink(path):
                continue
            if not _inside(real, real_root):
                outside.append((rel, real))
                dirnames.remove(name)
                continue
            ancestor = dirpath
            while True:
                if real_of.get(ancestor) == real:
                    raise DataError(
                        f"{what} has a symlink loop: {rel} -> {os.readlink(path)}; remove that link"
                    )
                if ancestor == str(root):
                    break
                ancestor = os.path.dirname(ancestor)
        if not dirnames and not filenames and prefix:
            listing.skip("empty-folder", rel_dir)  # e.g. a class with no images yet: said, not dropped
        for name in sorted(filenames):
            path, rel = os.path.join(dirpath, name), prefix + name
            if os.path.islink(path):
                real = os.path.realpath(path)
                if not _inside(real, real_root):
                    outside.append((rel, real))
                    continue
            try:
                st = os.stat(path)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise DataError(
                        f"{what} has a symlink loop: {rel} -> {os.readlink(path)}; remove that link"
                    ) from None
                listing.skip("broken-link", rel)
                continue
            if not is_data_file(rel):
                listing.skip("hidden" if is_ignored(rel) else "not-an-image-name", rel)
                continue
            safe = utf8_name(rel)
            if safe != rel:
                listing.renamed[rel] = safe
            if safe in listing.files:
                raise DataError(
                    f"{what} has two files stored as {safe!r} (one name is not UTF-8); rename one"
                )
            listing.files[safe] = (path, st)
    if outside:
        _refuse_outside(what, outside)
    return listing


def list_data_files(root: Path, what: str) -> Listing:
    """The data files under root; DataError when there are none."""
    listing = scan(root, what)
    if not listing.files:
        if not listing.skipped:
            raise DataError(f"{what} is empty; put the images there or point data.source elsewhere")
        raise DataError(
            f"{what} holds no image files (.png/.jpg/.jpeg/.tif/.bmp/.npz), only {sum(listing.skipped.values())} "
            f"other file(s) ({', '.join(f'{k}: {v}' for k, v in sorted(listing.skipped.items()))}); "
            "check data.source"
        )
    if listing.skipped:
        log.info("not ingested from %s: %s", what, dict(sorted(listing.skipped.items())))
    log_renamed(listing.renamed, what)
    check_tree(listing.files, what)
    listing.files = dict(sorted(listing.files.items()))
    return listing


def sync_dir(source_dir: Path, raw_dir: Path, source: str, prepare: Prepare | None = None) -> SyncSummary:
    """Copy new/changed files (size+mtime differ) with copy2, drop files gone from the source."""
    if not source_dir.exists():
        raise DataError(f"data.source {source!r} does not exist; check the path in params.yaml")
    if not source_dir.is_dir():
        raise DataError(f"data.source {source!r} is a file but not a .zip/.tar/.tar.gz/.tgz archive")
    listing = list_data_files(source_dir, f"source folder {source_dir}")
    with Mirror(raw_dir, kind="local", source=source, prepare=prepare) as mirror:
        for reason, n in listing.skipped.items():
            mirror.skip(reason, n)
        todo = [
            (rel, path, fp)
            for rel, (path, st) in listing.files.items()
            if not mirror.keep_if_unchanged(rel, fp := f"stat:{st.st_size}:{st.st_mtime_ns}")
        ]
        for rel, path, fp in tqdm(todo, desc="ingest: copy", unit="file", disable=None):
            shutil.copy2(path, mirror.staged_path(rel))
            mirror.add(rel, fp)
        return mirror.commit()
