"""The repository's .gitignore: generated views are ignored, the files a nightly commit records are not."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VIEWS = (
    "data/interim/class_view/0/p1_idx5_x1_y1_class0.png",  # 277k symlinks on IDC
    "reports/validation/data_docs/index.html",  # GX Data Docs site
    "dvc_plots/index.html",  # `dvc plots show`
    "checkpoints/last.keras",
)
COMMITTED = ("reports/metrics.json", "reports/validation/metrics.json", "reports/eval/roc.csv", "dvc.lock")


def _ignored(path: str) -> bool:
    done = subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=ROOT)
    if done.returncode == 128:
        pytest.skip("not a git checkout")
    return done.returncode == 0


@pytest.mark.parametrize("path", VIEWS)
def test_generated_views_are_git_ignored(path: str) -> None:
    assert _ignored(path)


@pytest.mark.parametrize("path", COMMITTED)
def test_metrics_plots_and_lock_are_not_ignored(path: str) -> None:
    assert not _ignored(path)
