"""One nightly run per workspace (file lock) and per Prefect server (global concurrency limit).

* The file lock (`filelock`, an OS-level flock) on `<project>/.dvc/tmp/nightly-retrain.lock` is
  held for the whole flow: two runs never reproduce into one workspace at once (DVC itself would
  only fail the second `dvc repro` half-way through).
* The Prefect global concurrency limit `medpipe-workspace` additionally serializes runs that share
  the model registry across machines, so two challengers are never gated against the same champion
  at the same time. The first run creates it (limit 1) when the server does not have it yet;
  `prefect gcl create medpipe-workspace --limit 1` does the same ahead of time, and
  `prefect gcl update medpipe-workspace --limit N` changes it (the flow never resets a limit).

A second run waits up to `wait_s` seconds (default 0: fail fast) and then raises WorkspaceBusy.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from pipeline.core.errors import MedpipeError

log = logging.getLogger(__name__)
GLOBAL_LIMIT = "medpipe-workspace"
LOCK_NAME = "nightly-retrain.lock"


class WorkspaceBusy(MedpipeError):
    """Another nightly run holds the workspace (or the global concurrency slot)."""


def lock_path(project_dir: Path) -> Path:
    """The lock file; .dvc/tmp is git-ignored by DVC."""
    return Path(project_dir).resolve() / ".dvc" / "tmp" / LOCK_NAME


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.with_suffix(".holder.json").read_text())
    except (OSError, ValueError):
        return "another run"
    return f"flow run {info.get('flow_run_id') or '?'} (since {info.get('since', '?')})"


@contextmanager
def file_lock(project_dir: Path, wait_s: float, holder_id: str | None) -> Iterator[Path]:
    """Hold the workspace file lock; raise WorkspaceBusy after wait_s seconds."""
    path = lock_path(project_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path), timeout=wait_s)
    try:
        lock.acquire()
    except Timeout:
        raise WorkspaceBusy(
            f"workspace {path.parents[2]} is busy: {_holder(path)} holds {path}; "
            f"retry when it finishes or pass lock_wait_s to wait"
        ) from None
    info_path = path.with_suffix(".holder.json")
    try:
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        info_path.write_text(json.dumps({"flow_run_id": holder_id, "since": since}))
        yield path
    finally:
        info_path.unlink(missing_ok=True)
        lock.release()


def ensure_global_limit(name: str = GLOBAL_LIMIT, limit: int = 1) -> bool:
    """Create the global concurrency limit `name` unless the server has it; True when created."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
            return False
        except ObjectNotFound:
            pass
        try:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=limit))
        except ObjectAlreadyExists:  # another run created it a moment ago
            return False
    log.info("created the Prefect global concurrency limit '%s' (limit %d)", name, limit)
    return True


@contextmanager
def global_slot(wait_s: float) -> Iterator[None]:
    """Occupy one slot of the Prefect global concurrency limit GLOBAL_LIMIT (created on first use)."""
    from prefect.concurrency.sync import concurrency

    ensure_global_limit()
    with ExitStack() as stack:
        try:
            stack.enter_context(
                concurrency(GLOBAL_LIMIT, occupy=1, timeout_seconds=max(wait_s, 5.0), strict=False)
            )
        except TimeoutError:
            raise WorkspaceBusy(
                f"Prefect concurrency limit '{GLOBAL_LIMIT}' is fully occupied by another nightly run; "
                f"retry when it finishes or pass lock_wait_s to wait"
            ) from None
        yield


@contextmanager
def exclusive_workspace(
    project_dir: Path, wait_s: float = 0.0, holder_id: str | None = None
) -> Iterator[None]:
    """File lock first (cheap, local), then the global Prefect slot; both held until the block ends."""
    with file_lock(project_dir, wait_s, holder_id), global_slot(wait_s):
        log.info("workspace %s locked for %s", project_dir, holder_id or "this run")
        yield
