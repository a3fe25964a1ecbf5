"""Start the `train-gpu` deployment as a subflow and watch it; fail fast when nothing can run it.

Before the child run is created, and on every poll while it waits to start, the parent asks the
Prefect API whether anything will pick it up:

* a deployment on a work pool needs the pool not paused and at least one worker whose last
  heartbeat is recent (within 3 heartbeat intervals, the server's own rule; 30 s when the worker
  did not say), status ONLINE;
* a served deployment (`flows.serve`, no work pool) needs its runner to have polled it within
  SERVED_STALE_S (the server's `deployment_last_polled_timeout_seconds` default).

No capacity before the start: StageFailed at once, no child run. Capacity gone while the child
is still Scheduled/Late: the child is set Cancelled and the parent fails with one line. A child
still unfinished at the timeout is cancelled too (Cancelling when it already runs, so its worker
stops it), instead of being left Late or Running.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import WorkerStatus, WorkPoolStatus
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound
from prefect.states import Cancelled, Cancelling

from flows.dvc_runner import StageFailed

log = logging.getLogger(__name__)
HEARTBEAT_MULTIPLE = 3  # the server marks a worker OFFLINE after 3 missed heartbeats
DEFAULT_HEARTBEAT_S = 30.0
SERVED_STALE_S = 60.0


class NoCapacity(StageFailed):
    """No worker polls the GPU pool (or nothing serves the deployment); the child run was cancelled."""


def _age_s(when: datetime | None) -> float | None:
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (datetime.now(UTC) - when).total_seconds()


def _ago(age: float | None) -> str:
    return "never" if age is None else f"{age:.0f}s ago"


def missing_capacity(client, deployment) -> str | None:
    """None when something polls for this deployment's runs, else why not (one clause)."""
    if deployment.paused:
        return "the deployment is paused"
    pool_name = deployment.work_pool_name
    if not pool_name:  # served: its runner polls the deployment itself
        age = _age_s(deployment.last_polled)
        if age is None or age > SERVED_STALE_S:
            return f"no process serves it (last polled {_ago(age)}; start `python -m flows.serve`)"
        return None
    pool = client.read_work_pool(pool_name)
    if pool.is_paused or pool.status == WorkPoolStatus.PAUSED:
        return f"work pool '{pool_name}' is paused (`prefect work-pool resume {pool_name}`)"
    workers = client.read_workers_for_work_pool(pool_name)
    alive = [
        w
        for w in workers
        if w.status == WorkerStatus.ONLINE
        and (age := _age_s(w.last_heartbeat_time)) is not None
        and age <= HEARTBEAT_MULTIPLE * float(w.heartbeat_interval_seconds or DEFAULT_HEARTBEAT_S)
    ]
    if alive:
        return None
    last = min((a for w in workers if (a := _age_s(w.last_heartbeat_time)) is not None), default=None)
    return (
        f"no worker is polling work pool '{pool_name}' (last heartbeat {_ago(last)}; "
        f"start one on the GPU host: `prefect worker start --pool {pool_name}`)"
    )


def _cancel(client, flow_run, message: str) -> None:
    """Cancelled if it never started; Cancelling (its worker stops it) if it is running."""
    state = flow_run.state
    new = Cancelling(message=message) if state and state.is_running() else Cancelled(message=message)
    client.set_flow_run_state(flow_run.id, new, force=True)
    log.info("flow run %s set %s: %s", flow_run.id, new.name, message)


def run_on_pool(name: str, parameters: dict, timeout_s: float, poll_s: float, logger=None):
    """Run deployment `name` as a subflow; return its final flow run, or raise StageFailed (one line)."""
    logger = logger or log
    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(name)
        except ObjectNotFound:
            raise StageFailed(
                f"deployment {name} does not exist: run `prefect deploy --all` (or `python -m flows.serve`)"
            ) from None
        why = missing_capacity(client, deployment)
    if why:
        raise NoCapacity(f"train not sent to deployment {name}: {why}")
    child = run_deployment(name, parameters=parameters, timeout=0, as_subflow=True)
    logger.info("train handed to deployment %s: flow run %s", name, child.id)
    deadline = time.monotonic() + timeout_s
    with get_client(sync_client=True) as client:
        while True:
            run = client.read_flow_run(child.id)
            if run.state and run.state.is_final():
                return run
            if run.state is None or run.state.is_scheduled():
                why = missing_capacity(client, client.read_deployment_by_name(name))
                if why:
                    message = f"train on deployment {name} cancelled before it started: {why}"
                    _cancel(client, run, message)
                    raise NoCapacity(f"{message} (flow run {run.id})")
            if time.monotonic() > deadline:
                state = run.state.name if run.state else "unknown"
                message = f"train on deployment {name} still {state} after {timeout_s:.0f}s; cancelled"
                _cancel(client, run, message)
                raise StageFailed(f"{message} (flow run {run.id})")
            time.sleep(poll_s)
