"""The ingest state file data/raw/.ingest-state.json: per file its bytes, sha256 and source
fingerprint, plus what was ingested (kind, source, extra). Only source-derived facts are stored
(no local mtimes), so the same source always gives the same file, hence the same DVC hash.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, fields
from pathlib import Path

log = logging.getLogger(__name__)
STATE_NAME = ".ingest-state.json"
STATE_VERSION = 2
_SAME = "="  # fingerprint stored in the state file when it is the file's own sha256


@dataclass(frozen=True)
class FileRecord:
    bytes: int
    sha256: str
    fingerprint: str


@dataclass
class SyncSummary:
    kind: str
    source: str
    files: dict[str, FileRecord]
    copied: int = 0
    unchanged: int = 0
    deleted: int = 0
    bytes_copied: int = 0
    seconds: float = 0.0
    skipped: dict[str, int] = field(default_factory=dict)  # source files not ingested, by reason

    def as_dict(self) -> dict:
        """Small summary for logs and the stage's return value (no per-file rows)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "files"}
        return {**out, "files": len(self.files), "seconds": round(self.seconds, 3)}


def load_state(raw_dir: Path) -> dict:
    """The previous run's state ({} when absent or unreadable)."""
    path = raw_dir / STATE_NAME
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        log.warning("ignoring unreadable %s; every file will be fetched again", path)
        return {}
    if state.get("version") != STATE_VERSION:
        return {}
    state["files"] = {
        rel: FileRecord(size, sha, f"sha256:{sha}" if fp == _SAME else fp)
        for rel, (size, sha, fp) in state.get("files", {}).items()
    }
    return state


def state_text(
    kind: str, source: str, extra: dict, records: dict[str, FileRecord], skipped: dict[str, int] | None = None
) -> str:
    """Deterministic, compact JSON for the state file."""
    files = {
        rel: [rec.bytes, rec.sha256, _SAME if rec.fingerprint == f"sha256:{rec.sha256}" else rec.fingerprint]
        for rel, rec in sorted(records.items())
    }
    state = {"version": STATE_VERSION, "kind": kind, "source": source, "extra": extra}
    if skipped:
        state["skipped"] = dict(sorted(skipped.items()))
    return json.dumps({**state, "files": files}, separators=(",", ":"), sort_keys=True) + "\n"
