"""Lines a default `dvc repro` must not print: third-party start-up output and notes nobody can act
on. Used by the e2e repro and to count noise in a saved log (`python tests/helpers/log_noise.py LOG`)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

NOISE = {
    # a finished checkpoints/ keeps a dvcignored README.txt (pipeline/training/checkpoints.py)
    "dvc empty out": r"^WARNING: '[^']+' is empty\.$",
    "absl notice": r"^WARNING: All log messages before absl::InitializeLog\(\)",
    "absl/TF INFO": r"^I\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] ",
    "TF CPU features": r"^To enable the following instructions:",
    "MLflow INFO": r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d INFO mlflow",
    "MLflow integer hint": r"UserWarning: Hint: Inferred schema contains integer",
    "warnings.warn source": r"^\s+warnings\.warn\($",
    "MLflow pip note": r"Failed to resolve installed pip version",
    "MLflow progress bar": r"^\r?Downloading artifacts:",
    "telemetry": r"(?i)failed to send telemetry",
}
# Not actionable but out of the project's reach: dvc/commands/repro.py prints it after every repro
# that ran a stage, with or without a remote; no DVC config key or variable turns it off (only
# `dvc repro -q`, which hides the stage progress too). Counted apart, not asserted away.
UNSILENCEABLE = {"dvc push hint": r"^Use `dvc push` to send your updates to remote storage\.$"}
_NOISE = {name: re.compile(pattern) for name, pattern in NOISE.items()}
_UNSILENCEABLE = {name: re.compile(pattern) for name, pattern in UNSILENCEABLE.items()}


def noise_lines(log: str, unsilenceable: bool = False) -> list[tuple[str, str]]:
    """(pattern name, line) for every line of `log` that is known noise (with `unsilenceable`: also
    the lines the project cannot turn off)."""
    patterns = _NOISE | _UNSILENCEABLE if unsilenceable else _NOISE
    found = []
    for line in log.split("\n"):  # a progress bar redrawn with \r is one line
        name = next((n for n, rx in patterns.items() if rx.search(line)), None)
        if name:
            found.append((name, line))
    return found


if __name__ == "__main__":
    for path in sys.argv[1:]:
        hits = noise_lines(Path(path).read_bytes().decode(errors="replace"), unsilenceable=True)
        counts: dict[str, int] = {}
        for name, _ in hits:
            counts[name] = counts.get(name, 0) + 1
        sys.stdout.write(f"{path}: {len(hits)} noise lines {counts}\n")
