"""The `train` stage as its own flow, deployed as `train-gpu` on the `gpu` work pool.

`nightly_retrain(gpu_pool=True)` starts it with `run_deployment` (flows.gpu_pool). Two hand-offs:

* `handoff="git"` (the default of the nightly flow): the GPU worker has a checkout of its own
  (`workdir`, default $MEDPIPE_GPU_WORKDIR or ~/.cache/medpipe/gpu-checkout, kept between runs
  with its DVC cache). It fetches the parent's commit from `repo_url`, pulls train's deps from
  the DVC remote, runs `dvc repro --single-item train`, pushes the outputs and sends the commit
  holding the new dvc.lock back to `repo_url` (see flows/handoff.py). The worker host needs git,
  dvc, prefect and medpipe (with Keras + a backend); see docs/orchestration.md.
* `handoff="shared"`: `dvc repro train` in `project_dir`, a directory the parent sees too (same
  machine or a shared volume at the same path).

The parent holds the workspace lock meanwhile; this flow does not take it.
"""

from __future__ import annotations

import os
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.runtime import flow_run

from flows import handoff as ho
from flows.lock_commit import commit_dvc_lock
from flows.tasks import NETWORK_TASK, PUSH_TIMEOUT_S, SYNC_TIMEOUT_S, TRAIN_TIMEOUT_S, _run, train_model

DEFAULT_WORKDIR = "~/.cache/medpipe/gpu-checkout"


def gpu_workdir(workdir: str | None) -> Path:
    return Path(workdir or os.environ.get("MEDPIPE_GPU_WORKDIR") or DEFAULT_WORKDIR).expanduser().resolve()


@task(name="checkout-revision", timeout_seconds=SYNC_TIMEOUT_S, **NETWORK_TASK)
def checkout_revision(workdir: str, repo_url: str, ref: str, revision: str) -> None:
    """git fetch + detached checkout of exactly the parent's commit."""
    ho.checkout(Path(workdir), repo_url, ref, revision)
    get_run_logger().info("checked out %s (%s) from %s in %s", revision[:12], ref, repo_url, workdir)


@task(name="pull-train-deps", timeout_seconds=SYNC_TIMEOUT_S, **NETWORK_TASK)
def pull_deps(workdir: str, extra: list[str] | None = None) -> list[str]:
    """`dvc pull` of the train stage's DVC-tracked deps (+ `extra`), not the whole pipeline's data."""
    targets = list(dict.fromkeys(ho.dvc_deps(Path(workdir)) + list(extra or [])))
    if targets:
        _run(["pull", *targets], workdir, SYNC_TIMEOUT_S)
    return targets


@task(name="train-single-stage", tags=["gpu"], timeout_seconds=TRAIN_TIMEOUT_S)
def train_single(workdir: str) -> list[str]:
    """`dvc repro --single-item train`: upstream data came from the remote, not from rerunning it."""
    return _run(["repro", "--single-item", ho.TRAIN], workdir, TRAIN_TIMEOUT_S).ran


@task(name="push-train-outs", timeout_seconds=PUSH_TIMEOUT_S, **NETWORK_TASK)
def push_outs(workdir: str) -> None:
    _run(["push", ho.TRAIN], workdir, PUSH_TIMEOUT_S)


@task(name="send-trained-revision", timeout_seconds=SYNC_TIMEOUT_S, **NETWORK_TASK)
def send_revision(workdir: str, repo_url: str, run_id: str, ran: list[str]) -> dict:
    """Commit dvc.lock + train's small results, push the commit to refs/medpipe/trained/<run>."""
    root = Path(workdir)
    done = commit_dvc_lock(root, f"gpu host: dvc.lock after train ({', '.join(ran) or 'up to date'})")
    ref, sha = ho.send_back(root, repo_url, run_id)
    get_run_logger().info("%s; pushed %s as %s", done.note, sha[:12], ref)
    return {"ref": ref, "revision": sha, "files": list(done.files), "ran": ran}


@flow(name="train-stage", timeout_seconds=TRAIN_TIMEOUT_S + 1800)
def train_stage(
    project_dir: str = ".",
    timeout_s: float = TRAIN_TIMEOUT_S,
    handoff: str = "shared",  # "shared" | "git" (str: Literal fails when a worker loads the entrypoint)
    repo_url: str | None = None,
    ref: str | None = None,
    revision: str | None = None,
    workdir: str | None = None,
    result_id: str | None = None,
    extra_targets: list[str] | None = None,
) -> dict:
    """Train; returns what ran and, for the git hand-off, the commit holding the new dvc.lock.

    shared: `dvc repro train` in project_dir. git: repo_url/ref/revision name the parent's commit,
    workdir is this host's checkout, result_id names the ref the result is pushed to
    (refs/medpipe/trained/<result_id>, default this flow run's id); extra_targets: more DVC
    targets to pull (inputs train reads without declaring them, e.g. images named in manifests).
    """
    if handoff not in ("shared", "git"):
        raise ho.HandoffFailed(f"handoff must be 'shared' or 'git', not {handoff!r}")
    if handoff == "shared":
        root = str(Path(project_dir).resolve())
        return {"ran": train_model.with_options(timeout_seconds=timeout_s)(root)}
    if not (repo_url and ref and revision):
        raise ho.HandoffFailed("handoff='git' needs repo_url, ref and revision (the parent passes them)")
    root = str(gpu_workdir(workdir))
    checkout_revision(root, repo_url, ref, revision)
    pull_deps(root, extra_targets)
    ran = train_single.with_options(timeout_seconds=timeout_s)(root)
    push_outs(root)
    return send_revision(root, repo_url, result_id or str(flow_run.id), ran)
