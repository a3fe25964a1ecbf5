"""prefect.yaml and flows/serve.py declare the deployments the docs promise (no server needed)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from helpers.script_module import load_script
from prefect import Flow
from prefect.server.schemas.schedules import CronSchedule  # the server's: it computes fire times

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def prefect_yaml() -> dict:
    return yaml.safe_load((ROOT / "prefect.yaml").read_text())


def _deployment(prefect_yaml: dict, name: str) -> dict:
    found = [d for d in prefect_yaml["deployments"] if d["name"] == name]
    assert len(found) == 1, f"prefect.yaml must declare deployment {name!r} once"
    return found[0]


def _load_entrypoint(entrypoint: str) -> Flow:
    path, _, func = entrypoint.partition(":")
    return getattr(load_script(path, f"entry_{func}"), func)


def test_prefect_yaml_matches_prefects_own_schema(prefect_yaml):
    from prefect.cli.deploy._models import PrefectYamlModel  # what `prefect deploy` validates with

    model = PrefectYamlModel.model_validate(prefect_yaml)
    assert {d.name for d in model.deployments} == {"nightly-retrain", "train-gpu"}
    step = prefect_yaml["pull"][0]
    assert "prefect.deployments.steps.set_working_directory" in step


@pytest.mark.parametrize(
    ("deployment", "flow_name", "pool"),
    [("nightly-retrain", "nightly-retrain", "cpu"), ("train-gpu", "train-stage", "gpu")],
)
def test_entrypoints_import_to_the_named_flows(prefect_yaml, deployment, flow_name, pool):
    spec = _deployment(prefect_yaml, deployment)
    flow = _load_entrypoint(spec["entrypoint"])
    assert isinstance(flow, Flow) and flow.name == flow_name
    assert spec["work_pool"]["name"] == pool
    assert set(spec.get("parameters", {})) <= set(flow.parameters.properties)  # no stale parameter names
    # what a worker does with a run's parameters after loading the entrypoint from its file
    flow.validate_parameters(spec.get("parameters", {}))


def test_train_gpu_accepts_the_git_handoff_parameters_when_loaded_like_a_worker():
    flow = _load_entrypoint("flows/train_gpu.py:train_stage")
    params = {"handoff": "git", "repo_url": "/srv/git/medpipe.git", "ref": "refs/medpipe/handoff/x"}
    assert flow.validate_parameters({**params, "revision": "0" * 40, "timeout_s": 60})["handoff"] == "git"


def test_nightly_schedule_is_the_2am_cron(prefect_yaml):
    (schedule,) = _deployment(prefect_yaml, "nightly-retrain")["schedules"]
    assert schedule["cron"] == "0 2 * * *"
    cron = CronSchedule(cron=schedule["cron"], timezone=schedule.get("timezone", "UTC"))
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(cron.timezone)
    start = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    fire_times = [d.astimezone(tz) for d in _next_dates(cron, start, 3)]
    assert [(t.hour, t.minute) for t in fire_times] == [(2, 0)] * 3
    assert len({t.date() for t in fire_times}) == 3  # once a day


def _next_dates(cron: CronSchedule, start: datetime, n: int) -> list:
    import asyncio

    return asyncio.run(cron.get_dates(n=n, start=start))


def test_gpu_deployment_is_not_scheduled(prefect_yaml):
    assert not _deployment(prefect_yaml, "train-gpu").get("schedules")


def test_serve_builds_the_same_deployments(tmp_path):
    from flows.nightly_retrain import nightly_retrain
    from flows.serve import NIGHTLY_CRON, build_deployments

    nightly, gpu = build_deployments(str(tmp_path), timezone="Europe/Berlin")
    # distinct names: serving never overwrites (or, when stopped, pauses) the prefect.yaml deployments
    assert (nightly.name, gpu.name) == ("nightly-retrain-served", "train-gpu-served")
    assert nightly.parameters["gpu_deployment"] == "train-stage/train-gpu-served"
    assert set(nightly.parameters) <= set(nightly_retrain.parameters.properties)
    (schedule,) = nightly.schedules
    assert schedule.schedule.cron == NIGHTLY_CRON == "0 2 * * *"
    assert schedule.schedule.timezone == "Europe/Berlin"
    assert nightly.parameters["project_dir"] == str(tmp_path.resolve())


def test_prefect_deploy_all_creates_both_deployments(prefect_harness, tmp_path):
    """`prefect deploy --all` against a temporary server, in a copy of the project."""
    import os
    import shutil
    import subprocess
    import sys

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists
    from prefect.settings import PREFECT_API_URL

    work = tmp_path / "proj"
    shutil.copytree(ROOT / "flows", work / "flows", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "prefect.yaml", work / "prefect.yaml")
    with get_client(sync_client=True) as client:
        for pool in ("cpu", "gpu"):
            try:
                client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
            except ObjectAlreadyExists:  # another test of the session made it
                pass
    env = dict(os.environ, PREFECT_API_URL=PREFECT_API_URL.value(), MEDPIPE_PROJECT_DIR=str(work))
    proc = subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with get_client(sync_client=True) as client:
        nightly = client.read_deployment_by_name("nightly-retrain/nightly-retrain")
        gpu = client.read_deployment_by_name("train-stage/train-gpu")
    assert nightly.work_pool_name == "cpu" and gpu.work_pool_name == "gpu"
    (schedule,) = nightly.schedules
    assert schedule.schedule.cron == "0 2 * * *" and schedule.schedule.timezone == "UTC"
    assert nightly.pull_steps[0]["prefect.deployments.steps.set_working_directory"]["directory"] == str(work)
    assert nightly.global_concurrency_limit is not None and nightly.global_concurrency_limit.limit == 1
    assert not gpu.schedules
