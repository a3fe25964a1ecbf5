"""The nightly retrain flow: sync data, `dvc repro` stage by stage, gate + register, push, report.

When dvc.yaml has a `changes` stage it runs right before train (after the data stages), and its
summary (reports/changes.json) becomes the `nightly-changes` markdown artifact; whatever its
status, or if it fails, the run goes on (the register gate says whether it could use it).

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
from prefect.runtime import flow_run
from prefect.states import Completed
from prefect.tasks import exponential_backoff

from flows.changes_report import publish_changes
from flows.dvc_runner import StageFailed, stage_names
from flows.run_report import decision, headline_metrics, publish_artifacts
from flows.tasks import (
    METRICS,
    TRAIN_TIMEOUT_S,
    commit_lock_files,
    push_outputs,
    read_json,
    register_model,
    repro_changes,
    repro_stage,
    sync_data,
    train_model,
)
from flows.train_remote import GPU_DEPLOYMENT, train_on_gpu_pool
from flows.workspace_lock import exclusive_workspace

GPU_POLL_S = 10.0


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
    gpu_handoff: str = "git",  # "git" | "shared" (str: Literal fails when a worker loads the entrypoint)
    gpu_deployment: str = GPU_DEPLOYMENT,
    git_remote: str = "origin",
    gpu_repo_url: str | None = None,
    gpu_pull: list[str] | None = None,
):
    """Retrain on the latest data and promote the model only when it beats the champion.

    project_dir: the medpipe checkout (a git + DVC repo); push: `dvc push` at the end when a default
    remote is configured; gpu_pool: train through the `train-gpu` deployment instead of in-process;
    lock_wait_s: how long a second run waits for the workspace (0 = fail fast "workspace busy");
    network_retry_delay_s: backoff factor of the network tasks' retries (delays f, 2f, 4f);
    commit_lock: git-commit dvc.lock (and DVC's .gitignore entries, nothing else) before register,
    so the registered git revision holds the lock that produced the model (skipped outside git).
    gpu_handoff (with gpu_pool): "git" = the GPU worker has its own checkout: the revision goes
    through `git_remote` (cloned by the worker from gpu_repo_url, default that remote's URL) and the
    data through the default DVC remote; "shared" = the worker runs in project_dir itself (same
    host or a shared volume). gpu_deployment: the deployment to run (`train-stage/train-gpu`).
    gpu_pull: more DVC targets for the GPU host to pull besides train's declared deps (train reads
    only what it declares, so none are needed by default).
    A pool without a live worker fails the run at once (flows/gpu_pool.py).
    """
    logger = get_run_logger()
    root = str(Path(project_dir).resolve())
    stages = stage_names(Path(root))
    if gpu_handoff not in ("git", "shared"):
        raise StageFailed(f"gpu_handoff must be 'git' or 'shared', not {gpu_handoff!r}")
    if gpu_pool and gpu_handoff == "git" and not commit_lock:
        raise StageFailed(
            "gpu_handoff='git' hands a commit of dvc.lock to the GPU host: it needs commit_lock=true"
        )
    with exclusive_workspace(Path(root), lock_wait_s, flow_run.id):
        delays = exponential_backoff(backoff_factor=network_retry_delay_s)
        synced = sync_data.with_options(retry_delay_seconds=delays)(root)
        logger.info("data synced (remote: %s)", synced["pulled_from"] or "none")
        ran, changes = list(synced["ran"]), None
        for stage in stages[stages.index("ingest") + 1 : stages.index("register")]:
            if stage == "changes":  # run below, right before train
                continue
            if stage == "train" and "changes" in stages:  # what changed since the champion
                changes = repro_changes(root)
                ran += changes.pop("ran")
                publish_changes(changes)
            if stage != "train":
                ran += repro_stage(root, stage)
            elif gpu_pool:  # the child's own logs show its dvc output
                ran += train_on_gpu_pool(
                    root,
                    gpu_handoff,
                    gpu_deployment,
                    git_remote,
                    gpu_repo_url,
                    train_timeout_s,
                    gpu_poll_s,
                    gpu_pull,
                )
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
        "changes": None if changes is None else changes.get("status"),
    }
    return Completed(message=message, data=summary)


def main(argv: list[str] | None = None) -> int:
    """Command line: run the flow once, print the final state's message."""
    parser = argparse.ArgumentParser(description="Run the nightly retrain flow once.")
    parser.add_argument("--project-dir", default=".")
    parser.add_argument("--no-push", action="store_true")
    parser.add_argument("--gpu-pool", action="store_true")
    parser.add_argument("--gpu-handoff", choices=("git", "shared"), default="git")
    parser.add_argument("--lock-wait-s", type=float, default=0.0)
    parser.add_argument("--no-commit-lock", action="store_true", help="do not git-commit dvc.lock")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    state = nightly_retrain(
        project_dir=args.project_dir,
        push=not args.no_push,
        gpu_pool=args.gpu_pool,
        gpu_handoff=args.gpu_handoff,
        lock_wait_s=args.lock_wait_s,
        commit_lock=not args.no_commit_lock,
        return_state=True,
    )
    logging.getLogger("medpipe.flows").info("%s: %s", state.name, state.message)
    return 0 if state.is_completed() else 1


if __name__ == "__main__":
    raise SystemExit(main())
