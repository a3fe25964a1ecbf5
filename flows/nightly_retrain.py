"""The nightly retrain flow: sync data, `dvc repro` stage by stage, gate + register, push, report.

    uv run python -m flows.nightly_retrain --project-dir .      # one run now (temporary local server)
    prefect deployment run 'nightly-retrain/nightly-retrain'     # the scheduled deployment (prefect.yaml)

The flow only orchestrates `dvc`; stages are declared in dvc.yaml and implemented in pipeline/.
Final state: Completed with a message saying whether the challenger was promoted and why, or
Failed naming the stage that failed (then nothing is registered or pushed).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.deployments import run_deployment
from prefect.runtime import flow_run
from prefect.states import Completed
from prefect.tasks import exponential_backoff

from flows.dvc_runner import StageFailed, stage_names
from flows.run_report import decision, headline_metrics, publish_artifacts
from flows.tasks import (
    METRICS,
    TRAIN_TIMEOUT_S,
    commit_lock_files,
    push_outputs,
    read_json,
    register_model,
    repro_stage,
    sync_data,
    train_model,
)
from flows.workspace_lock import exclusive_workspace

GPU_DEPLOYMENT = "train-stage/train-gpu"
GPU_POLL_S = 10.0


def _train_on_gpu_pool(project_dir: str, timeout_s: float, poll_s: float) -> None:
    """Run the `train-gpu` deployment (work pool `gpu`) as a subflow and wait for it."""
    run = run_deployment(
        GPU_DEPLOYMENT,
        parameters={"project_dir": project_dir},
        timeout=timeout_s,
        poll_interval=poll_s,
        as_subflow=True,
    )
    state = run.state
    if state is None or not state.is_completed():
        name = state.name if state else "unknown"
        why = (state.message if state else None) or "see the flow run's logs"
        raise StageFailed(f"train on deployment {GPU_DEPLOYMENT} (flow run {run.id}) ended {name}: {why}")


@flow(name="nightly-retrain", timeout_seconds=24 * 3600, validate_parameters=True)
def nightly_retrain(
    project_dir: str = ".",
    push: bool = True,
    gpu_pool: bool = False,
    lock_wait_s: float = 0.0,
    network_retry_delay_s: float = 30.0,
    train_timeout_s: float = TRAIN_TIMEOUT_S,
    gpu_poll_s: float = GPU_POLL_S,
    commit_lock: bool = True,
):
    """Retrain on the latest data and promote the model only when it beats the champion.

    project_dir: the medpipe checkout (a git + DVC repo); push: `dvc push` at the end when a default
    remote is configured; gpu_pool: train through the `train-gpu` deployment instead of in-process;
    lock_wait_s: how long a second run waits for the workspace (0 = fail fast "workspace busy");
    network_retry_delay_s: backoff factor of the network tasks' retries (delays f, 2f, 4f);
    commit_lock: git-commit dvc.lock (and DVC's .gitignore entries, nothing else) before register,
    so the registered git revision holds the lock that produced the model (skipped outside git).
    """
    logger = get_run_logger()
    root = str(Path(project_dir).resolve())
    stages = stage_names(Path(root))
    with exclusive_workspace(Path(root), lock_wait_s, flow_run.id):
        delays = exponential_backoff(backoff_factor=network_retry_delay_s)
        synced = sync_data.with_options(retry_delay_seconds=delays)(root)
        logger.info("data synced (remote: %s)", synced["pulled_from"] or "none")
        ran = list(synced["ran"])
        for stage in stages[stages.index("ingest") + 1 : stages.index("register")]:
            if stage != "train":
                ran += repro_stage(root, stage)
            elif gpu_pool:
                _train_on_gpu_pool(root, train_timeout_s, gpu_poll_s)  # its stages show in the subflow's logs
            else:
                ran += train_model.with_options(timeout_seconds=train_timeout_s)(root)
        lock = commit_lock_files(root) if commit_lock else {"head": None, "files": [], "note": "not asked"}
        outcome = register_model(root)
        ran += outcome["stages_run"]
        for stage in stages[stages.index("register") + 1 :]:
            ran += repro_stage(root, stage)
        outcome["stages_run"] = list(dict.fromkeys(ran))
        promoted, message = decision(outcome)
        metrics = headline_metrics(read_json(Path(root) / METRICS, "evaluate"))
        if push:
            push_outputs.with_options(retry_delay_seconds=delays)(root)
        publish_artifacts(root, outcome, metrics, message)
    logger.info(message)
    summary = {
        "promoted": promoted,
        "registered": outcome["ran"],
        "stages_run": outcome["stages_run"],
        "record": outcome["record"],
        "metrics": metrics,
        "lock_commit": lock,
    }
    return Completed(message=message, data=summary)


def main(argv: list[str] | None = None) -> int:
    """Command line: run the flow once, print the final state's message."""
    parser = argparse.ArgumentParser(description="Run the nightly retrain flow once.")
    parser.add_argument("--project-dir", default=".")
    parser.add_argument("--no-push", action="store_true")
    parser.add_argument("--gpu-pool", action="store_true")
    parser.add_argument("--lock-wait-s", type=float, default=0.0)
    parser.add_argument("--no-commit-lock", action="store_true", help="do not git-commit dvc.lock")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    state = nightly_retrain(
        project_dir=args.project_dir,
        push=not args.no_push,
        gpu_pool=args.gpu_pool,
        lock_wait_s=args.lock_wait_s,
        commit_lock=not args.no_commit_lock,
        return_state=True,
    )
    logging.getLogger("medpipe.flows").info("%s: %s", state.name, state.message)
    return 0 if state.is_completed() else 1


if __name__ == "__main__":
    raise SystemExit(main())
