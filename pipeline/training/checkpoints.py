"""The resumable-training directory (outputs["checkpoints"], DVC `persist: true`).

Layout: fingerprint.json (params + input hashes), history.csv (CSVLogger, appended across
resumes), best.weights.h5 (ModelCheckpoint, best train.monitor value so far), backup_<phase>/
(BackupAndRestore), <phase>.done.weights.h5 (weights after a finished phase).
A different fingerprint means different params or data: the directory is cleared.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)
# A finished checkpoints/ holds only this note: DVC warns about an empty output at every save. The
# project's .dvcignore lists it, so dvc.lock still records an empty directory (nfiles 0), the state
# the GPU hand-off (flows/handoff.py) recreates on the CPU host.
NOTE = "README.txt"
NOTE_TEXT = (
    "Resumable state of a running train stage, emptied when a training finishes.\n"
    "DVC ignores this note (.dvcignore), so dvc.lock records the finished directory as empty.\n"
)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint(params: dict, files: list[Path]) -> dict:
    """What a checkpoint depends on: the params used and the hash of every input file."""
    return {
        "params": json.loads(json.dumps(params, sort_keys=True, default=str)),
        "inputs": {str(p): file_sha256(p) for p in files if p.is_file()},
    }


class CheckpointDir:
    def __init__(self, root: Path):
        self.root = Path(root)

    @property
    def history(self) -> Path:
        return self.root / "history.csv"

    @property
    def best_weights(self) -> Path:
        return self.root / "best.weights.h5"

    def backup(self, phase: str) -> Path:
        return self.root / f"backup_{phase}"

    def phase_weights(self, phase: str) -> Path:
        return self.root / f"{phase}.done.weights.h5"

    def prepare(self, fp: dict) -> bool:
        """Keep the directory if its fingerprint matches (returns True: resume), else start clean."""
        marker = self.root / "fingerprint.json"
        if marker.is_file():
            try:
                if json.loads(marker.read_text()) == fp:
                    log.info("resuming from checkpoints in %s", self.root)
                    return True
            except json.JSONDecodeError:
                pass
            log.info("params or inputs changed since the checkpoints in %s; starting over", self.root)
        self.clear()
        marker.write_text(json.dumps(fp, indent=2, sort_keys=True) + "\n")
        return False

    def clear(self) -> None:
        """Empty the directory (it stays, as DVC persists it) but for the dvcignored note."""
        if self.root.exists():
            shutil.rmtree(self.root)
        self.root.mkdir(parents=True)
        (self.root / NOTE).write_text(NOTE_TEXT)

    def read_history(self) -> pd.DataFrame:
        """Epoch rows logged so far; a row repeated by a resume keeps its last version."""
        if not self.history.is_file() or self.history.stat().st_size == 0:
            return pd.DataFrame(columns=["epoch"])
        df = pd.read_csv(self.history)
        return df.drop_duplicates("epoch", keep="last").sort_values("epoch").reset_index(drop=True)

    def best_val_loss(self) -> float | None:
        return self.best_value("val_loss", "min")

    def best_value(self, monitor: str, mode: str, start_epoch: int = 0) -> float | None:
        """Best `monitor` logged so far from 0-based epoch `start_epoch` on (None: nothing yet)."""
        df = self.read_history()
        if monitor not in df.columns:
            return None
        values = df.loc[df["epoch"] >= start_epoch, monitor].dropna()
        if values.empty:
            return None
        return float(values.max() if mode == "max" else values.min())
