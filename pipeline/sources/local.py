"""Local directory source: mirror the data files of a folder into data/raw (rsync-like)."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from tqdm import tqdm

from pipeline.errors import DataError
from pipeline.sources.files import is_data_file, walk_files
from pipeline.sources.mirror import Mirror, SyncSummary

log = logging.getLogger(__name__)


def list_data_files(root: Path, what: str) -> dict[str, os.stat_result]:
    """{relpath: stat} of the data files under root; DataError when there are none."""
    found = walk_files(root)
    if not found:
        raise DataError(f"{what} is empty; put the images there or point data.source elsewhere")
    data = {rel: st for rel, st in found.items() if is_data_file(rel)}
    if not data:
        examples = ", ".join(sorted(found)[:3])
        raise DataError(
            f"{what} holds no image files (.png/.jpg/.jpeg/.tif/.bmp/.npz), only e.g. {examples}; "
            "check data.source"
        )
    if len(found) > len(data):
        log.info("ignoring %d hidden or non-image files in %s", len(found) - len(data), what)
    return dict(sorted(data.items()))


def sync_dir(source_dir: Path, raw_dir: Path, source: str) -> SyncSummary:
    """Copy new/changed files (size+mtime differ) with copy2, delete files gone from the source."""
    if not source_dir.exists():
        raise DataError(f"data.source {source!r} does not exist; check the path in params.yaml")
    if not source_dir.is_dir():
        raise DataError(f"data.source {source!r} is a file but not a .zip/.tar/.tar.gz/.tgz archive")
    listing = list_data_files(source_dir, f"source folder {source_dir}")
    with Mirror(raw_dir, kind="local", source=source) as mirror:
        todo = [
            (rel, fp)
            for rel, st in listing.items()
            if not mirror.keep_if_unchanged(rel, fp := f"stat:{st.st_size}:{st.st_mtime_ns}")
        ]
        for rel, fp in tqdm(todo, desc="ingest: copy", unit="file", disable=None):
            shutil.copy2(source_dir / rel, mirror.staged_path(rel))
            mirror.add(rel, fp)
        return mirror.commit()
