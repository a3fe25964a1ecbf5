"""reproduce mechanics on a tiny git + DVC repo whose evaluate stage writes deterministic metrics."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from pipeline.cli import commands as cli
from pipeline.registry import reproduce

DVC_YAML = """stages:
  evaluate:
    cmd: python evaluate.py
    deps: [evaluate.py]
    metrics:
      - reports/metrics.json:
          cache: false
  register:
    cmd: python -c "raise SystemExit('register must not run')"
    deps: [reports/metrics.json]
"""
SCRIPT = """import json, pathlib
pathlib.Path("reports").mkdir(exist_ok=True)
pathlib.Path("reports/metrics.json").write_text(json.dumps({{"roc_auc": {auc}, "n_test": 10, "ci": {{}}}}))
"""


PROJECT_DVC_YAML = Path(__file__).resolve().parents[2] / "dvc.yaml"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def _commit(repo: Path, auc: float) -> str:
    (repo / "evaluate.py").write_text(SCRIPT.format(auc=auc))
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", f"auc {auc}")
    return _git(repo, "rev-parse", "HEAD")


def _register(
    client: MlflowClient, commit: str, auc: float, dirty: bool = False, files: list | tuple = ()
) -> str:
    """A version of model m on a run with these metrics and run artifacts [(dir, local path)]."""
    exp = client.get_experiment_by_name("e") or client.get_experiment(client.create_experiment("e"))
    run = client.create_run(exp.experiment_id)
    client.log_metric(run.info.run_id, "roc_auc", auc)
    client.log_metric(run.info.run_id, "n_test", 10)
    for dest, local in files:
        client.log_artifact(run.info.run_id, str(local), dest)
    if not client.search_registered_models("name='m'"):
        client.create_registered_model("m")
    tags = {"git.commit": commit, "git.dirty": str(dirty).lower()}
    return str(client.create_model_version("m", "file:///x", run.info.run_id, tags=tags).version)


def _data_pipeline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dvc_yaml: str, evaluate: str, params: str | None = None
) -> tuple[Path, Path]:
    """(source file, repo): a committed git + DVC project whose ingest copies $SRC (value 0.8) into
    data/raw and whose evaluate writes a metric from it (INGEST, EVALUATE below)."""
    source = tmp_path / "source.txt"
    source.write_text("0.8")
    monkeypatch.setenv("SRC", str(source))
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=repo, check=True)
    (repo / "dvc.yaml").write_text(dvc_yaml)
    (repo / "ingest.py").write_text(INGEST)
    (repo / "evaluate.py").write_text(evaluate)
    if params is not None:
        (repo / "params.yaml").write_text(params)
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "pipeline")
    return source, repo


def _use_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, repo: Path) -> str:
    """An MLflow sqlite store under tmp_path for this process and its children; cwd = repo."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(repo)
    mlflow.set_tracking_uri(uri)
    return uri


def test_reproduce_compares_the_registered_revision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=repo, check=True)
    (repo / "dvc.yaml").write_text(DVC_YAML)
    old = _commit(repo, 0.75)
    new = _commit(repo, 0.5)  # HEAD moves on: reproducing v1 must use the old code
    uri = _use_registry(tmp_path, monkeypatch, repo)
    client = MlflowClient(uri)
    good = _register(client, old, 0.75)
    drifted = _register(client, new, 0.70)  # code at `new` yields 0.5: not reproducible

    assert reproduce.main(f"m@{good}", tolerance=0.01) == 0
    out = capsys.readouterr().out
    assert "reproduced" in out and "NOT" not in out and "roc_auc" in out
    assert reproduce.main(f"m@{drifted}", tolerance=0.1) == 1
    assert "NOT reproduced (roc_auc)" in capsys.readouterr().out
    assert cli.main(["reproduce", f"m@{drifted}", "--tolerance", "0.25"]) == 0  # |0.5-0.7| <= 0.25

    assert _git(repo, "worktree", "list").count("\n") == 0  # temporary worktrees are gone
    assert not (repo / "reports").exists()  # nothing ran in the main checkout


def test_metrics_path_and_compare(tmp_path: Path) -> None:
    (tmp_path / "dvc.yaml").write_text(DVC_YAML)
    assert reproduce.metrics_path(tmp_path / "dvc.yaml") == Path("reports/metrics.json")
    # today's layout: DVC shows headline.json; every number of a version is in metrics.json, an out
    (tmp_path / "now").mkdir()
    (tmp_path / "now" / "dvc.yaml").write_text(PROJECT_DVC_YAML.read_text())
    assert reproduce.metrics_path(tmp_path / "now" / "dvc.yaml") == Path("reports/metrics.json")
    rows = reproduce.compare({"a": 0.5, "b": 1.0}, {"a": 0.52}, tolerance=0.02)
    assert [(r["metric"], r["ok"]) for r in rows] == [("a", True), ("b", False)]  # missing b never ok
    assert "NO" in reproduce.format_table(rows, 0.02)


def test_stage_progress_is_logged_while_it_runs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    script = (
        "import sys; print(\"Running stage 'train':\"); "
        "print('12:00:01 INFO pipeline.training.epoch_log: epoch 1/3: loss=0.5', file=sys.stderr); "
        "print('12:00:02 INFO pipeline.training.fit: epoch 2/3: loss=0.4', file=sys.stderr); "  # older revisions
        "print('noise')"
    )
    caplog.set_level(logging.DEBUG, logger=reproduce.log.name)
    reproduce._run_streamed([sys.executable, "-c", script], tmp_path, {}, "[2/5] train")
    shown = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert shown[0] == "  [2/5] train | Running stage 'train':"
    assert shown[1].endswith("epoch 1/3: loss=0.5") and shown[2].endswith("epoch 2/3: loss=0.4")
    assert shown[3].startswith("  [2/5] train done in ")
    assert any("noise" in r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG)
    with pytest.raises(reproduce.MedpipeError, match="failed in .*: boom"):
        reproduce._run_streamed(
            [sys.executable, "-c", "print('boom'); raise SystemExit(3)"], tmp_path, {}, "x"
        )


def test_unknown_revision_is_a_clean_error(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q")
    with pytest.raises(reproduce.MedpipeError, match="not in"):
        with reproduce.worktree(tmp_path, "0" * 40):
            pass


DATA_DVC_YAML = """stages:
  ingest:
    cmd: python ingest.py
    deps: [ingest.py]
    outs: [data/raw]
  evaluate:
    cmd: python evaluate.py
    deps: [evaluate.py, data/raw]
    metrics:
      - reports/metrics.json:
          cache: false
"""
INGEST = """import os, pathlib, shutil
pathlib.Path("data/raw").mkdir(parents=True, exist_ok=True)
shutil.copy(os.environ["SRC"], "data/raw/value.txt")
"""
EVALUATE = """import json, pathlib
pathlib.Path("reports").mkdir(exist_ok=True)
value = float(pathlib.Path("data/raw/value.txt").read_text())
pathlib.Path("reports/metrics.json").write_text(json.dumps({"roc_auc": value, "n_test": 10}))
"""


def test_reproduce_uses_the_revisions_data_not_the_changed_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """A nightly version: dvc.lock committed by the flow's step; the source changes afterwards."""
    from flows.lock_commit import commit_dvc_lock

    source, repo = _data_pipeline(tmp_path, monkeypatch, DATA_DVC_YAML, EVALUATE)
    subprocess.run([sys.executable, "-m", "dvc", "repro", "-q"], cwd=repo, check=True)
    commit = commit_dvc_lock(repo, "nightly: dvc.lock").head
    assert "data/raw" in _git(repo, "show", f"{commit}:dvc.lock")
    uri = _use_registry(tmp_path, monkeypatch, repo)
    version = _register(MlflowClient(uri), commit, 0.8)

    source.write_text("0.3")  # new data arrived at the source since that nightly run
    assert reproduce.main(f"m@{version}", tolerance=0.001) == 0, capsys.readouterr().out
    assert "m v1: reproduced" in capsys.readouterr().out


SCALED_DVC_YAML = DATA_DVC_YAML.replace(
    "deps: [evaluate.py, data/raw]", "deps: [evaluate.py, data/raw]\n    params: [evaluate.bootstrap]"
)
SCALED_EVALUATE = EVALUATE.replace(
    'value = float(pathlib.Path("data/raw/value.txt").read_text())',
    'import yaml\nvalue = float(pathlib.Path("data/raw/value.txt").read_text())'
    ' * yaml.safe_load(pathlib.Path("params.yaml").read_text())["evaluate"]["bootstrap"] / 100',
)


def test_first_uncommitted_run_is_reproduced_from_the_files_stored_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, caplog: pytest.LogCaptureFixture
) -> None:
    """A first run: dvc.lock never committed, params.yaml changed but not committed (git.dirty), the
    source changed since. reproduce takes dvc.lock + params.yaml from the run and data/raw from the
    DVC cache: every metric matches exactly and data.source is not re-synced."""
    import logging

    from pipeline.core.provenance import git_revision
    from pipeline.registry import run_content

    source, repo = _data_pipeline(
        tmp_path, monkeypatch, SCALED_DVC_YAML, SCALED_EVALUATE, params="evaluate: {bootstrap: 100}\n"
    )
    (repo / "params.yaml").write_text("evaluate: {bootstrap: 50}\n")  # the run's params, never committed
    subprocess.run([sys.executable, "-m", "dvc", "repro", "-q"], cwd=repo, check=True)
    commit, dirty = git_revision(repo)
    assert dirty and "dvc.lock" not in _git(repo, "ls-tree", "--name-only", commit)
    uri = _use_registry(tmp_path, monkeypatch, repo)
    stored, _ = run_content.report_artifacts({})  # what the register stage logs from the project root
    assert sorted(p.name for _, p in stored) == ["dvc.lock", "params.yaml"]
    version = _register(MlflowClient(uri), commit, 0.4, dirty=True, files=stored)

    source.write_text("0.3")  # re-syncing the source would give 0.15
    (repo / "params.yaml").write_text("evaluate: {bootstrap: 100}\n")  # and the working tree moved on
    caplog.set_level(logging.INFO, logger="pipeline.registry")
    assert reproduce.main(f"m@{version}", tolerance=0.0) == 0, capsys.readouterr().out
    assert "m v1: reproduced" in capsys.readouterr().out
    messages = [r.getMessage() for r in caplog.records]
    assert not any("re-syncing data.source" in m for m in messages), messages
    assert any("stored with the version" in m for m in messages), messages
