"""The sync engine every source uses to update data/raw incrementally and atomically.

A `Mirror` compares each source file's fingerprint ("stat:<size>:<mtime_ns>", "etag:<etag>:<size>",
"sha256:<hex>") with the one recorded by the previous run in data/raw/.ingest-state.json. Unchanged
files are left alone (their sha256 is reused); new or changed files are written to a staging folder
beside data/raw. `commit()` completes the staging folder into the whole new data/raw (unchanged
files are hard links to the current ones: no bytes copied, same inodes, so DVC does not rehash
them), writes the state file into it and swaps it with data/raw in one rename
(renameat2(RENAME_EXCHANGE); where the file system lacks it, two renames journaled by the fixed
name `.raw.previous`, which the next run puts back or removes). Until that swap nothing in
data/raw is touched: a failed run leaves data/raw and its state file byte-identical. Files are
never rewritten in place, which keeps DVC's linked cache safe. A run that changes nothing
touches nothing.

See state.py for the state file.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.sources.files import link_or_copy, sha256_file, walk_files
from pipeline.sources.state import STATE_NAME, FileRecord, SyncSummary, load_state, state_text

log = logging.getLogger(__name__)
Prepare = Callable[[SyncSummary], None]


@dataclass
class Mirror:
    """One incremental, all-or-nothing update of `raw_dir` from a source of `kind`.

    `prepare(summary)`, when given, runs after everything is staged and before the swap (the
    ingest stage writes its manifest there), so its failure also leaves data/raw untouched.
    """

    raw_dir: Path
    kind: str
    source: str
    extra: dict = field(default_factory=dict)
    prepare: Prepare | None = None

    def __post_init__(self) -> None:
        self.started = time.perf_counter()
        recover(self.raw_dir)
        self.prev = load_state(self.raw_dir)
        self.existing = walk_files(self.raw_dir) if self.raw_dir.is_dir() else {}
        self.existing.pop(STATE_NAME, None)
        self.records: dict[str, FileRecord] = {}
        self.staged: set[str] = set()
        self.skipped: dict[str, int] = {}
        self.bytes_copied = 0
        self._staging: Path | None = None
        self._made: set[str] = set()  # staging sub-folders already created

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
        self.skipped = dict(self.prev.get("skipped", {}))

    def keep_if_unchanged(self, rel: str, fingerprint: str) -> bool:
        """Record `rel` as unchanged when its fingerprint matches and the ingested copy is intact."""
        rec = self.prev.get("files", {}).get(rel)
        st = self.existing.get(rel)
        if rec is None or rec.fingerprint != fingerprint or st is None or st.st_size != rec.bytes:
            return False
        self.records[rel] = rec
        return True

    def skip(self, reason: str, n: int = 1) -> None:
        """Count source files not ingested, by reason (reported in the summary and the log)."""
        if n:
            self.skipped[reason] = self.skipped.get(reason, 0) + n

    # -- staging ----------------------------------------------------------------------------
    @property
    def staging(self) -> Path:
        if self._staging is None:
            self.raw_dir.parent.mkdir(parents=True, exist_ok=True)
            for old in self.raw_dir.parent.glob(f".{self.raw_dir.name}.staging-*"):
                shutil.rmtree(old, ignore_errors=True)  # left by a killed run
            prefix = f".{self.raw_dir.name}.staging-"
            self._staging = Path(tempfile.mkdtemp(prefix=prefix, dir=self.raw_dir.parent))
            self._staging.chmod(0o755)  # it becomes raw_dir itself; mkdtemp makes it 0700
        return self._staging

    def staged_path(self, rel: str) -> Path:
        """Where to write the new version of `rel` (parent folders created)."""
        path = self.staging / rel
        parent = rel.rpartition("/")[0]
        if parent not in self._made:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._made.add(parent)
        return path

    def add(self, rel: str, fingerprint: str, sha256: str | None = None) -> FileRecord:
        """Register a file already written at staged_path(rel)."""
        path = self.staging / rel
        rec = FileRecord(path.stat().st_size, sha256 or sha256_file(path), fingerprint)
        if rel in self.staged:
            self.bytes_copied -= self.records[rel].bytes
        self.records[rel] = rec
        self.staged.add(rel)
        self.bytes_copied += rec.bytes
        return rec

    def discard(self, rel: str) -> None:
        """Drop a staged file (e.g. an extracted file found identical to the ingested copy)."""
        (self.staging / rel).unlink()

    # -- committing -------------------------------------------------------------------------
    def commit(self) -> SyncSummary:
        """Make the staging folder the whole new data/raw and swap it in; returns the summary."""
        text = state_text(self.kind, self.source, self.extra, self.records, self.skipped)
        stale = sorted(rel for rel in self.existing if rel not in self.records)
        summary = SyncSummary(
            kind=self.kind,
            source=self.source,
            files=dict(sorted(self.records.items())),
            copied=len(self.staged),
            unchanged=len(self.records) - len(self.staged),
            deleted=len(stale),
            bytes_copied=self.bytes_copied,
            skipped=dict(sorted(self.skipped.items())),
        )
        state_path = self.raw_dir / STATE_NAME
        unchanged = not self.staged and not stale and state_path.is_file() and state_path.read_text() == text
        if not unchanged:
            for rel in self.records.keys() - self.staged:
                link_or_copy(self.raw_dir / rel, self.staged_path(rel))
            (self.staging / STATE_NAME).write_text(text)
        if self.prepare is not None:
            self.prepare(summary)
        if not unchanged:
            swap(self.staging, self.raw_dir)
            self._staging = None
        self.cleanup()
        summary.seconds = time.perf_counter() - self.started
        log.info("ingest %s: %s", self.kind, summary.as_dict())
        return summary

    def cleanup(self) -> None:
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None
            self._made.clear()

    def __enter__(self) -> Mirror:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def _previous(raw_dir: Path) -> Path:
    return raw_dir.parent / f".{raw_dir.name}.previous"


def recover(raw_dir: Path) -> None:
    """Finish or undo a swap a killed run left half done (only the two-rename fallback can)."""
    previous = _previous(raw_dir)
    if not previous.exists():
        return
    if raw_dir.exists():
        shutil.rmtree(previous)
    else:
        os.rename(previous, raw_dir)
        log.warning("restored %s from %s (a previous ingest was interrupted mid-swap)", raw_dir, previous)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def swap(new: Path, raw_dir: Path) -> None:
    """Put the complete tree `new` in place of raw_dir; the old tree is deleted afterwards."""
    if not raw_dir.exists():
        os.rename(new, raw_dir)
        return
    if _exchange(new, raw_dir):
        shutil.rmtree(new, ignore_errors=True)  # now the old tree
        return
    previous = _previous(raw_dir)
    os.rename(raw_dir, previous)
    os.rename(new, raw_dir)
    shutil.rmtree(previous, ignore_errors=True)
