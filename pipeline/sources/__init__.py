"""Ingest sources: sample | local folder | .zip/.tar/.tar.gz/.tgz archive | s3://bucket/prefix.

`sync(cfg, raw_dir)` mirrors the configured source into raw_dir incrementally and atomically
(see mirror.py) and returns a SyncSummary whose `files` maps each relative path to its bytes and
sha256. Every source follows one rule for links: inside the source followed, leaving it refused.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from pipeline.config import Config, DataConfig
from pipeline.core.errors import ConfigError
from pipeline.core.redact import redact
from pipeline.sources.mirror import Prepare
from pipeline.sources.state import STATE_NAME, FileRecord, SyncSummary

__all__ = ["STATE_NAME", "FileRecord", "SyncSummary", "free_bytes", "source_kind", "sync"]
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def source_kind(source: str) -> str:
    """'sample', 's3', 'archive' or 'local'; ConfigError for an unsupported URL scheme."""
    from pipeline.sources.archive import is_archive

    if source == "sample":
        return "sample"
    match = _SCHEME.match(source)
    if match:
        scheme = match.group(1).lower()
        if scheme == "s3":
            return "s3"
        raise ConfigError(
            f"data.source {redact(source)!r} uses unsupported scheme '{scheme}://'; "
            "use 'sample', a local folder, a .zip/.tar/.tar.gz archive or s3://bucket/prefix"
        )
    return "archive" if is_archive(source) else "local"


def free_bytes(path: Path) -> int:
    """Free bytes on the file system that holds (or will hold) path."""
    probe = Path(path).absolute()
    while not probe.exists():
        probe = probe.parent
    return shutil.disk_usage(probe).free


def sync(cfg: Config | DataConfig, raw_dir: Path, prepare: Prepare | None = None) -> SyncSummary:
    """Mirror data.source into raw_dir; dispatches on the kind of source.

    `prepare(summary)` runs after everything is staged, before data/raw is swapped (mirror.py).
    """
    data = cfg.data if isinstance(cfg, Config) else cfg
    raw_dir = Path(raw_dir)
    kind = source_kind(data.source)
    if kind == "sample":
        from pipeline.sources.sample import sync_sample

        return sync_sample(data.sample, raw_dir, prepare)
    if kind == "s3":
        from pipeline.sources.s3 import sync_s3

        return sync_s3(data.source, raw_dir, data.s3_endpoint_url, data.s3_workers, prepare)
    path = Path(data.source).expanduser()
    if kind == "archive":
        from pipeline.sources.archive import ArchiveLimits, sync_archive

        limits = ArchiveLimits(data.max_archive_bytes, data.max_archive_members, free_bytes(raw_dir))
        return sync_archive(path, raw_dir, data.source, limits, prepare)
    from pipeline.sources.local import sync_dir

    return sync_dir(path, raw_dir, data.source, prepare)
