"""End to end: `dvc repro` in a temporary copy of the project on a tiny config.

Checks the spine's promises: the whole graph runs from raw images to a registered model, a
second `dvc repro` is a no-op, a train param reruns only train -> evaluate -> register, and
`dvc metrics show` / the registry / lineage answer.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers.git_dvc_project import GIT_ENV, make_git_dvc_project
from helpers.log_noise import noise_lines


def _run(args: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


def _ran(output: str) -> list[str]:
    return re.findall(r"Running stage '([\w-]+)'", output)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> tuple[Path, dict]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env.pop("MLFLOW_TRACKING_URI", None)
    env.update(GIT_ENV)
    work = make_git_dvc_project(tmp_path_factory.mktemp("e2e") / "proj", "e2e-idc", env)
    return work, env


def test_first_repro_builds_everything(project):
    work, env = project
    proc = _run([sys.executable, "-m", "dvc", "repro"], work, env)
    ran = _ran(proc.stdout)
    assert ran == [
        "ingest", "regroup", "validate", "split", "balance", "preprocess", "changes", "train", "evaluate",
        "register",
    ]  # fmt: skip
    # quiet by default: no third-party start-up lines, empty-output notes or MLflow hints
    assert noise_lines(proc.stdout + "\n" + proc.stderr) == []
    meta = json.loads((work / "data/preprocessed/meta.json").read_text())
    label_map = json.loads((work / "models/label_map.json").read_text())
    assert {k: label_map[k] for k in ("image_size", "channels", "window")} == {
        k: meta[k] for k in ("image_size", "channels", "window")
    }
    metrics = json.loads((work / "reports/metrics.json").read_text())
    for key in ("accuracy", "sensitivity", "specificity", "ppv", "npv", "f1", "roc_auc", "pr_auc"):
        assert key in metrics
    assert 0.0 <= metrics["roc_auc"] <= 1.0
    assert len(metrics) <= 30 and all(v is None or isinstance(v, int | float) for v in metrics.values())
    assert json.loads((work / "reports/diagnostics.json").read_text())["per_class"]
    assert (work / "models/model.keras").is_file()
    assert json.loads((work / "models/label_map.json").read_text())["classes"]
    html = (work / "reports/report.html").read_text()
    assert "data:image/png;base64," in html
    record = json.loads((work / "reports/registered.json").read_text())
    assert record["model_name"] == "e2e-idc" and int(record["version"]) == 1
    assert 'href="registered.html"' in html and "e2e-idc v1" in (work / "reports/registered.html").read_text()


def test_second_repro_is_a_noop(project):
    work, env = project
    proc = _run([sys.executable, "-m", "dvc", "repro"], work, env)
    # changes is always_changed (the champion in the registry is an input DVC cannot hash); nothing
    # else reruns. The first night had no champion (baseline); now v1 is read back from its lineage
    assert _ran(proc.stdout) == ["changes"]
    doc = json.loads((work / "reports/changes.json").read_text())
    assert doc["status"] == "compared", doc["reason"]
    assert [doc[k] for k in ("added", "removed", "changed", "relabelled")] == [0, 0, 0, 0]


def test_patients_never_cross_splits(project):
    work, _ = project
    import pandas as pd

    patients = {
        s: set(pd.read_csv(work / f"data/splits/{s}.csv")["patient_id"].astype(str))
        for s in ("train", "val", "test")
    }
    assert not patients["train"] & patients["val"]
    assert not patients["train"] & patients["test"]
    assert not patients["val"] & patients["test"]


def test_train_param_reruns_only_downstream(project):
    work, env = project
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["train"]["epochs"] = 3
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    proc = _run([sys.executable, "-m", "dvc", "repro"], work, env)
    assert _ran(proc.stdout) == ["changes", "train", "evaluate", "register"]  # changes always; not preprocess


def _changed(work: Path, env: dict) -> set[str]:
    proc = _run([sys.executable, "-m", "dvc", "status", "--json"], work, env)
    return set(json.loads(proc.stdout or "{}"))


def test_preprocess_param_or_source_image_makes_preprocess_stale(project):
    work, env = project
    params_path = work / "params.yaml"
    original = params_path.read_text()
    params = yaml.safe_load(original)
    params["preprocess"]["channels"] = 1
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        assert "preprocess" in _changed(work, env)
    finally:
        params_path.write_text(original)
    assert "preprocess" not in _changed(work, env)
    image = next(p for p in sorted((work / "data/raw").rglob("*.png")))
    image.chmod(0o644)
    before = image.read_bytes()
    try:
        image.write_bytes(before[:-1] + bytes([before[-1] ^ 1]))
        assert "preprocess" in _changed(work, env)
    finally:
        image.write_bytes(before)


def test_metrics_registry_and_lineage_answer(project):
    work, env = project
    shown = _run([sys.executable, "-m", "dvc", "metrics", "show", "--json"], work, env)
    assert "roc_auc" in shown.stdout
    (workspace,) = json.loads(shown.stdout).values()  # keyed "" (the workspace)
    files = workspace["data"]
    assert list(files) == ["reports/headline.json"]  # metrics.json, validation/split/balance: not shown
    numbers = files["reports/headline.json"]["data"]
    assert len(numbers) <= 30 and all(v is None or isinstance(v, int | float) for v in numbers.values())
    table = _run([sys.executable, "-m", "dvc", "metrics", "show"], work, env).stdout
    assert "roc_auc" in table and max(len(line) for line in table.splitlines()) <= 200, table
    lineage = _run(["medpipe", "lineage", "model", "e2e-idc@challenger", "--json"], work, env)
    info = json.loads(lineage.stdout)
    text = json.dumps(info)
    assert "roc_auc" in text
    raw_md5 = yaml.safe_load((work / "dvc.lock").read_text())["stages"]["ingest"]["outs"][0]["md5"]
    assert raw_md5 in text


def test_reproduce_rebuilds_version_1_with_the_same_metrics(project):
    """`medpipe reproduce` rebuilds v1 from its git revision in a worktree; CPU training is seeded."""
    work, env = project
    if not (work / "reports/registered.json").is_file():
        _run([sys.executable, "-m", "dvc", "repro"], work, env)
    proc = subprocess.run(
        ["medpipe", "reproduce", "e2e-idc@1", "--tolerance", "0.001"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "e2e-idc v1: reproduced" in proc.stdout
    assert "roc_auc" in proc.stdout


def test_dvc_exp_run_logs_a_run_but_registers_nothing(project):
    """`dvc exp run --temp` runs register in .dvc/tmp/exps/...: the project's registry gets the run
    (relative sqlite URI resolved against DVC_ROOT), no version, no alias move."""
    from mlflow import MlflowClient

    work, env = project
    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")

    def versions() -> list[str]:
        return sorted(str(v.version) for v in client.search_model_versions("name='e2e-idc'"))

    def aliases() -> dict[str, str]:
        return {
            a: str(client.get_model_version_by_alias("e2e-idc", a).version)
            for a in ("champion", "challenger")
        }

    before, held = versions(), aliases()
    champion_run = client.get_run(client.get_model_version_by_alias("e2e-idc", "champion").run_id)
    assert champion_run.info.run_name == f"e2e-idc-v{held['champion']}"
    assert sorted(m.step for m in client.get_metric_history(champion_run.info.run_id, "train/loss"))[:2] == [
        1,
        2,
    ]

    _run(
        [sys.executable, "-m", "dvc", "exp", "run", "--temp", "-S", "train.epochs=1", "-n", "e2e-exp"],
        work,
        env,
    )
    assert versions() == before and aliases() == held
    exp_id = client.get_experiment_by_name("medpipe").experiment_id
    runs = client.search_runs([exp_id], filter_string="tags.`dvc.exp_name` = 'e2e-exp'")
    assert [r.info.run_name for r in runs] == ["e2e-idc-exp-e2e-exp"]
    assert not list((work / ".dvc" / "tmp").rglob("mlflow.db"))
