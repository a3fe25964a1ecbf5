"""Run `dvc` for the flows: a subprocess per command, output streamed to a logger, hard timeouts.

The flows never re-implement a stage; they only call `dvc repro/pull/push` here. A child is
started in its own process group so a timeout kills `dvc` *and* the `medpipe stage` it spawned.

Log levels: stdout lines go to INFO; a stderr line keeps the level it names (`HH:MM:SS WARNING
name: ...` from the stages' logging, `YYYY/MM/DD HH:MM:SS INFO mlflow...` from MLflow, `ERROR: ...`
from dvc, `medpipe: error: ...`, a traceback), else WARNING. The children run with TF/absl/gRPC logging at errors only and progress bars off
(tqdm bars are disabled when not on a terminal; TQDM_DISABLE covers any that are not).
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pipeline.core import dvc_files
from pipeline.core.errors import MedpipeError
from pipeline.core.redact import redact

log = logging.getLogger(__name__)
_RAN = re.compile(r"Running stage '([\w@.-]+)'")
# `HH:MM:SS LEVEL` (the stages), `YYYY/MM/DD HH:MM:SS LEVEL` (MLflow), `LEVEL:` (dvc)
_LEVEL = re.compile(r"^(?:\S+ ){0,2}(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL)\b[: ]")
_ERROR = re.compile(r"^(?:\S+: error:|Traceback \(most recent call last\)|\w*(?:Error|Exception)\b)")
# Quiet children: TF C++ and absl at errors only, no gRPC chatter, no progress bars in the log.
QUIET_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "ABSL_MIN_LOG_LEVEL": "2",
    "GRPC_VERBOSITY": "ERROR",
    "TQDM_DISABLE": "1",
    "PYTHONUNBUFFERED": "1",
    "DVC_NO_ANALYTICS": "1",  # no usage-report daemon after every dvc command of a nightly run
    "DO_NOT_TRACK": "1",  # no MLflow/Prefect usage telemetry from the children (offline it logs errors)
}


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
    env = {**QUIET_ENV, **os.environ}  # a value the user set wins
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
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
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
    stderr = threading.Thread(target=_relay, args=(proc.stderr, lines, logger, True), daemon=True)
    stderr.start()
    try:
        _relay(proc.stdout, lines, logger, False)
        stderr.join()
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


def line_level(line: str, stderr: bool) -> int:
    """Log level of one output line: INFO on stdout; on stderr the level it names, else WARNING."""
    if not stderr:
        return logging.INFO
    text = line.strip()
    named = _LEVEL.match(text)
    if named:
        return logging.getLevelName(named["level"])
    return logging.ERROR if _ERROR.match(text) else logging.WARNING


def _relay(stream: Iterable[str] | None, lines: list[str], logger, stderr: bool) -> None:
    """Log each line of a child's stream at its level; a traceback's lines stay at ERROR."""
    in_traceback = False
    for raw in stream or ():
        line = redact(raw.rstrip())  # Prefect stores these lines: never URL user info
        lines.append(line)  # list.append is atomic: two relays may share the list
        if not line.strip():
            continue
        level = line_level(line, stderr)
        in_traceback = in_traceback or (stderr and line.startswith("Traceback"))
        if in_traceback:
            level = logging.ERROR
            in_traceback = line.startswith((" ", "\t", "Traceback"))  # the exception line closes it
        logger.log(level, "  %s", line)


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
