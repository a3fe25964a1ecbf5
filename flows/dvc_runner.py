"""Run `dvc` for the flows: a subprocess per command, output streamed to a logger, hard timeouts.

The flows never re-implement a stage; they only call `dvc repro/pull/push` here. A child is
started in its own process group so a timeout kills `dvc` *and* the `medpipe stage` it spawned.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from pipeline import dvc_files
from pipeline.errors import MedpipeError

log = logging.getLogger(__name__)
_RAN = re.compile(r"Running stage '([\w@.-]+)'")


class StageFailed(MedpipeError):
    """A `dvc` command exited non-zero or ran past its timeout."""


@dataclass(frozen=True)
class DvcResult:
    """What one `dvc` command did: its output and the stages it actually ran."""

    args: tuple[str, ...]
    output: str

    @property
    def ran(self) -> list[str]:
        return _RAN.findall(self.output)


def dvc_env(flow_run_id: str | None = None) -> dict[str, str]:
    """Environment for a `dvc` child: this venv's bin first (for `medpipe`), the flow-run id for register."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    if flow_run_id:
        env["PREFECT__FLOW_RUN_ID"] = str(flow_run_id)  # read by prefect.runtime.flow_run.id in the stage
    return env


def run_dvc(
    args: list[str],
    project_dir: Path,
    timeout_s: float,
    logger: logging.Logger | logging.LoggerAdapter | None = None,
    flow_run_id: str | None = None,
) -> DvcResult:
    """Run `dvc <args>` in project_dir; raise StageFailed (one line) on a non-zero exit or a timeout."""
    logger = logger or log
    cmd = [sys.executable, "-m", "dvc", *args]
    logger.info("$ dvc %s", " ".join(args))
    proc = subprocess.Popen(
        cmd,
        cwd=project_dir,
        env=dvc_env(flow_run_id),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # own process group: a timeout kills the stage under dvc too
    )
    timed_out = threading.Event()

    def _kill() -> None:
        timed_out.set()
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass

    timer = threading.Timer(timeout_s, _kill)
    timer.daemon = True
    timer.start()
    lines: list[str] = []
    try:
        for line in proc.stdout or ():
            line = line.rstrip()
            lines.append(line)
            if line.strip():
                logger.info("  %s", line)
        code = proc.wait()
    except BaseException:
        _kill()
        proc.wait()
        raise
    finally:
        timer.cancel()
    what = f"`dvc {' '.join(args)}` in {project_dir}"
    if timed_out.is_set():
        raise StageFailed(f"{what} ran past its {timeout_s:.0f}s timeout and was killed")
    if code != 0:
        raise StageFailed(f"{what} failed (exit {code}): {_last_error(lines)}")
    return DvcResult(tuple(args), "\n".join(lines))


def _last_error(lines: list[str]) -> str:
    """The telling lines of a failed command: the stage's own error, then dvc's (else the last line)."""
    errors = [
        line.strip() for line in lines if any(w in line.lower() for w in ("error", "failed", "exception"))
    ]
    if errors:
        return " | ".join(dict.fromkeys(errors[-2:]))
    tail = [line.strip() for line in lines if line.strip()]
    return tail[-1] if tail else "no output"


def default_remote(project_dir: Path) -> str | None:
    """Name of the default DVC remote (`core.remote`), or None when none is configured."""
    from dvc.repo import Repo

    with Repo(str(project_dir)) as repo:
        return repo.config["core"].get("remote") or None


def stage_names(project_dir: Path) -> list[str]:
    """Stage names in the order dvc.yaml declares them (dvc.yaml is the only place they are declared)."""
    path = project_dir / "dvc.yaml"
    if not path.is_file():
        raise StageFailed(f"{path} not found; point project_dir at the root of the medpipe checkout")
    stages = list(dvc_files.stages(path))
    missing = [name for name in ("ingest", "train", "register") if name not in stages]
    if missing:
        raise StageFailed(
            f"{path} has no stage {', '.join(map(repr, missing))}; the flow needs ingest, train and register"
        )
    return stages
