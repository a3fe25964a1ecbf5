"""ingest: mirror data.source into data/raw (incremental, all-or-nothing) and write the raw
manifest (path, bytes, sha256), one row per data file, sorted by path.

The manifest is written before data/raw is swapped and renamed into place right after, so a
failure anywhere leaves both data/raw (and its state file) and the manifest as they were.

Paths in the manifest are relative to the working directory (the project root under DVC), e.g.
`data/raw/10253/0/10253_idx5_x51_y1001_class0.png`. The sync state file
(data/raw/.ingest-state.json) is never listed. data/raw is immutable for all later stages.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pandas as pd

from pipeline import sources
from pipeline.config import Config
from pipeline.core import manifest
from pipeline.core.errors import MedpipeError

log = logging.getLogger(__name__)


def _relative_root(raw_dir: Path) -> str:
    """raw_dir as a POSIX path relative to the working directory."""
    return Path(os.path.relpath(raw_dir.absolute(), Path.cwd())).as_posix()


def raw_manifest(summary: sources.SyncSummary, raw_dir: Path) -> pd.DataFrame:
    """The raw manifest of a sync: path (relative to cwd), bytes, sha256, sorted by path."""
    root = _relative_root(raw_dir)
    rows = [(f"{root}/{rel}", rec.bytes, rec.sha256) for rel, rec in summary.files.items()]
    df = pd.DataFrame(rows, columns=manifest.RAW_COLUMNS)
    return df.sort_values("path", kind="stable").reset_index(drop=True)


def run(cfg: Config, inputs: dict[str, Path], outputs: dict[str, Path]) -> dict:
    """Sync data.source into outputs['raw'] and write outputs['manifest']."""
    missing = {"raw", "manifest"} - set(outputs)
    if missing:
        raise MedpipeError(f"ingest needs outputs {', '.join(sorted(missing))} (-o raw=... -o manifest=...)")
    raw_dir, manifest_path = Path(outputs["raw"]), Path(outputs["manifest"])
    pending = manifest_path.with_name(f".{manifest_path.name}.pending")

    def write_manifest(summary: sources.SyncSummary) -> None:  # before data/raw is swapped
        manifest.write(raw_manifest(summary, raw_dir), pending)

    try:
        summary = sources.sync(cfg, raw_dir, prepare=write_manifest)
        os.replace(pending, manifest_path)
    finally:
        pending.unlink(missing_ok=True)
    result = summary.as_dict()
    log.info(
        "ingest: %d files (%d copied, %d unchanged, %d deleted) in %.2fs -> %s%s",
        result["files"],
        result["copied"],
        result["unchanged"],
        result["deleted"],
        result["seconds"],
        manifest_path,
        f"; not ingested: {result['skipped']}" if result["skipped"] else "",
    )
    return result
