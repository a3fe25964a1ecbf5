"""Lines a default `dvc repro` must not print: third-party start-up output and notes nobody can act
on. Used by the e2e repro and to count noise in a saved log (`python tests/helpers/log_noise.py LOG`)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

NOISE = {
    # checkpoints/ stays empty after a finished training (the GPU hand-off recreates it from dvc.lock
    # as an empty directory), so DVC's warning about it is the one left
    "dvc empty out": r"^WARNING: '(?!checkpoints')[^']+' is empty\.$",
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
_NOISE = {name: re.compile(pattern) for name, pattern in NOISE.items()}


def noise_lines(log: str) -> list[tuple[str, str]]:
    """(pattern name, line) for every line of `log` that is known noise."""
    found = []
    for line in log.split("\n"):  # a progress bar redrawn with \r is one line
        name = next((n for n, rx in _NOISE.items() if rx.search(line)), None)
        if name:
            found.append((name, line))
    return found


if __name__ == "__main__":
    for path in sys.argv[1:]:
        hits = noise_lines(Path(path).read_bytes().decode(errors="replace"))
        counts: dict[str, int] = {}
        for name, _ in hits:
            counts[name] = counts.get(name, 0) + 1
        sys.stdout.write(f"{path}: {len(hits)} noise lines {counts}\n")
