"""flows.lock_commit: only DVC's bookkeeping is committed; the user's changes stay exactly as they were."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from flows.lock_commit import commit_dvc_lock

DVC_YAML = """stages:
  ingest:
    cmd: python ingest.py
    outs: [data/raw]
  train:
    cmd: python train.py
    outs: [models]
    metrics:
      - reports/metrics.json:
          cache: false
      - reports/cached.json
    plots:
      - reports/history.csv:
          cache: false
plots:
  - ROC:
      x: fpr
      y:
        reports/eval/roc.csv: tpr
"""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-global-gitconfig"))  # no identity set
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    (root / "dvc.yaml").write_text(DVC_YAML)
    (root / "train.py").write_text("print('v1')\n")
    (root / "notes.md").write_text("v1\n")
    (root / ".gitignore").write_text("/mlflow.db\n")
    (root / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")
    git(root, "add", "-A")
    git(root, "-c", "user.name=u", "-c", "user.email=u@u", "commit", "-qm", "initial")
    return root


def test_commits_the_lock_and_dvc_gitignores_only(repo: Path) -> None:
    (repo / "dvc.lock").write_text("schema: '2.0'\nstages:\n  ingest: {outs: [{path: data/raw}]}\n")
    (repo / "data").mkdir()
    (repo / "data" / ".gitignore").write_text("/raw\n")  # what dvc writes next to data/raw
    (repo / ".gitignore").write_text("/mlflow.db\n/models\n*.user-pattern\n")  # DVC entry + a user edit
    (repo / "train.py").write_text("print('v2, uncommitted user work')\n")  # dirty tracked code
    (repo / "notes.md").write_text("v2 staged\n")
    git(repo, "add", "notes.md")  # staged by the user, must stay staged and uncommitted
    before = git(repo, "rev-parse", "HEAD").strip()

    done = commit_dvc_lock(repo, "nightly: dvc.lock")

    head = git(repo, "rev-parse", "HEAD").strip()
    assert done.head == head != before
    assert set(git(repo, "show", "--name-only", "--format=", "HEAD").split()) == {
        "dvc.lock",
        "data/.gitignore",
    }
    assert done.files == ("dvc.lock", "data/.gitignore")
    assert git(repo, "log", "-1", "--format=%s|%an").strip() == "nightly: dvc.lock|medpipe nightly"
    status = git(repo, "status", "--porcelain").splitlines()
    assert sorted(status) == sorted([" M .gitignore", " M train.py", "M  notes.md"])

    again = commit_dvc_lock(repo, "nightly: dvc.lock")
    assert again.files == () and again.head == head and "already committed" in again.note


def test_skips_cleanly_outside_git_and_before_the_first_commit(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "dvc.yaml").write_text(DVC_YAML)
    (plain / "dvc.lock").write_text("schema: '2.0'\n")
    done = commit_dvc_lock(plain, "x")
    assert done.head is None and done.files == () and "not a git repository" in done.note

    git(plain, "init", "-q")
    done = commit_dvc_lock(plain, "x")
    assert done.head is None and "no commit yet" in done.note
    assert git(plain, "status", "--porcelain", "--untracked-files=all").count("??") == 2  # nothing staged


def test_commits_the_cache_false_metrics_and_plots_with_the_lock(repo: Path) -> None:
    """`dvc metrics diff` / `dvc plots diff` at the nightly revision must show that model's numbers."""
    (repo / "dvc.lock").write_text("schema: '2.0'\nstages:\n  train: {outs: [{path: models}]}\n")
    (repo / "reports" / "eval").mkdir(parents=True)
    (repo / "reports" / "metrics.json").write_text('{"roc_auc": 0.91}\n')
    (repo / "reports" / "history.csv").write_text("epoch,loss\n1,0.5\n")
    (repo / "reports" / "eval" / "roc.csv").write_text("fpr,tpr\n0,0\n1,1\n")
    (repo / "reports" / "cached.json").write_text("{}\n")  # cached by DVC: not git's business
    (repo / "reports" / "notes.txt").write_text("user file\n")

    done = commit_dvc_lock(repo, "nightly")

    assert set(done.files) == {
        "dvc.lock",
        "reports/metrics.json",
        "reports/history.csv",
        "reports/eval/roc.csv",
    }
    assert git(repo, "show", "HEAD:reports/metrics.json") == '{"roc_auc": 0.91}\n'
    untracked = git(repo, "status", "--porcelain", "--untracked-files=all").splitlines()
    assert sorted(untracked) == ["?? reports/cached.json", "?? reports/notes.txt"]

    (repo / "reports" / "metrics.json").write_text('{"roc_auc": 0.93}\n')  # the next night's model
    assert commit_dvc_lock(repo, "nightly").files == ("reports/metrics.json",)
