"""The sync engine every source uses to update data/raw incrementally and atomically.

A `Mirror` compares each source file's fingerprint ("stat:<size>:<mtime_ns>", "etag:<etag>:<size>",
"sha256:<hex>") with the one recorded by the previous run in data/raw/.ingest-state.json. Unchanged
files are left alone (their sha256 is reused); new or changed files are written to a staging folder
beside data/raw; `commit()` then moves them in and deletes files no longer in the source. Nothing
in data/raw is touched before commit, so a failed run leaves the previous good data/raw intact, and
existing files are replaced (never rewritten in place), which keeps DVC's linked cache safe.

See state.py for the state file.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.sources.files import sha256_file, walk_files
from pipeline.sources.state import STATE_NAME, FileRecord, SyncSummary, load_state, state_text

log = logging.getLogger(__name__)


@dataclass
class Mirror:
    """One incremental, all-or-nothing update of `raw_dir` from a source of `kind`."""

    raw_dir: Path
    kind: str
    source: str
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.started = time.perf_counter()
        self.prev = load_state(self.raw_dir)
        self.existing = walk_files(self.raw_dir) if self.raw_dir.is_dir() else {}
        self.existing.pop(STATE_NAME, None)
        self.records: dict[str, FileRecord] = {}
        self.staged: list[str] = []
        self.bytes_copied = 0
        self._staging: Path | None = None

    # -- deciding ---------------------------------------------------------------------------
    def same_source(self) -> bool:
        """True when the previous run ingested this kind/source/extra and data/raw still matches it."""
        prev_files = self.prev.get("files", {})
        if (self.prev.get("kind"), self.prev.get("source"), self.prev.get("extra")) != (
            self.kind,
            self.source,
            self.extra,
        ) or set(prev_files) != set(self.existing):
            return False
        return all(self.existing[rel].st_size == rec.bytes for rel, rec in prev_files.items())

    def keep_all(self) -> None:
        """Keep every previously ingested file (the source is known to be unchanged)."""
        self.records.update(self.prev["files"])

    def keep_if_unchanged(self, rel: str, fingerprint: str) -> bool:
        """Record `rel` as unchanged when its fingerprint matches and the ingested copy is intact."""
        rec = self.prev.get("files", {}).get(rel)
        st = self.existing.get(rel)
        if rec is None or rec.fingerprint != fingerprint or st is None or st.st_size != rec.bytes:
            return False
        self.records[rel] = rec
        return True

    # -- staging ----------------------------------------------------------------------------
    @property
    def staging(self) -> Path:
        if self._staging is None:
            self.raw_dir.parent.mkdir(parents=True, exist_ok=True)
            for old in self.raw_dir.parent.glob(f".{self.raw_dir.name}.staging-*"):
                shutil.rmtree(old, ignore_errors=True)  # left by a killed run
            prefix = f".{self.raw_dir.name}.staging-"
            self._staging = Path(tempfile.mkdtemp(prefix=prefix, dir=self.raw_dir.parent))
            self._staging.chmod(0o755)  # it may become raw_dir itself; mkdtemp makes it 0700
        return self._staging

    def staged_path(self, rel: str) -> Path:
        """Where to write the new version of `rel` (parent folders created)."""
        path = self.staging / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def add(self, rel: str, fingerprint: str, sha256: str | None = None) -> FileRecord:
        """Register a file already written at staged_path(rel)."""
        path = self.staging / rel
        rec = FileRecord(path.stat().st_size, sha256 or sha256_file(path), fingerprint)
        self.records[rel] = rec
        self.staged.append(rel)
        self.bytes_copied += rec.bytes
        return rec

    def discard(self, rel: str) -> None:
        """Drop a staged file (e.g. an extracted file found identical to the ingested copy)."""
        (self.staging / rel).unlink()

    # -- committing -------------------------------------------------------------------------
    def commit(self) -> SyncSummary:
        """Move staged files into raw_dir, delete stale ones, write the state file."""
        text = state_text(self.kind, self.source, self.extra, self.records)
        stale = sorted(rel for rel in self.existing if rel not in self.records)
        if not self.raw_dir.exists():
            (self.staging / STATE_NAME).write_text(text)
            os.replace(self.staging, self.raw_dir)
            self._staging = None
        else:
            for rel in stale:
                (self.raw_dir / rel).unlink()
            _prune_empty_dirs(self.raw_dir, {str(Path(rel).parent) for rel in stale})
            for rel in self.staged:
                dest = self.raw_dir / rel
                if dest.is_dir():
                    shutil.rmtree(dest)
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(self.staging / rel, dest)
            state_path = self.raw_dir / STATE_NAME
            if not state_path.is_file() or state_path.read_text() != text:
                tmp = self.staging / STATE_NAME
                tmp.write_text(text)
                os.replace(tmp, state_path)
        self.cleanup()
        summary = SyncSummary(
            kind=self.kind,
            source=self.source,
            files=dict(sorted(self.records.items())),
            copied=len(self.staged),
            unchanged=len(self.records) - len(self.staged),
            deleted=len(stale),
            bytes_copied=self.bytes_copied,
            seconds=time.perf_counter() - self.started,
        )
        log.info("ingest %s: %s", self.kind, summary.as_dict())
        return summary

    def cleanup(self) -> None:
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None

    def __enter__(self) -> Mirror:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def _prune_empty_dirs(root: Path, rel_dirs: set[str]) -> None:
    """Remove now-empty folders (and empty parents) below root."""
    for rel in sorted(rel_dirs, key=lambda r: -r.count("/")):
        path = root / rel
        while path != root and path.is_dir() and not any(path.iterdir()):
            path.rmdir()
            path = path.parent
