"""When the served model may read a `path` column, and how it reads one without leaking the disk.

A request's `path` is read only when MEDPIPE_SERVING_PATH_ROOTS (colon-separated folders) names
roots, and never inside MLflow's scoring server (`mlflow models serve` sets
_MLFLOW_IS_IN_SERVING_ENVIRONMENT) unless MEDPIPE_SERVING_PATHS_IN_SERVER=1 opts in as well. So
`mlflow.pyfunc.load_model(...).predict` in a batch job can score files under the roots; a served
model takes image bytes only. (`medpipe predict` reads the files it was given itself and hands the
model bytes.)

Every refusal, whatever the cause (paths disabled, outside the roots after realpath, missing,
unreadable, a FIFO, a device, a directory), is the same one line: no answer tells whether a file
exists. Non-regular files are refused from stat before any open; the open is O_NONBLOCK and
O_NOFOLLOW and fstat must show the same regular file, so a swap after the check reads nothing.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from pipeline.serving.limits import ENV_IMAGE_BYTES, RequestRefused

ENV_ROOTS = "MEDPIPE_SERVING_PATH_ROOTS"
ENV_IN_SERVER = "MEDPIPE_SERVING_PATHS_IN_SERVER"
MLFLOW_SERVING_ENV = "_MLFLOW_IS_IN_SERVING_ENVIRONMENT"  # set by mlflow.pyfunc.scoring_server.init
REFUSED = (
    "path refused: not a readable file under an allowed root; send the image bytes in the 'image' column"
)
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def in_scoring_server(env: dict | None = None) -> bool:
    env = os.environ if env is None else env
    return env.get(MLFLOW_SERVING_ENV, "").strip().lower() in ("true", "1")


@dataclass(frozen=True)
class PathPolicy:
    """The resolved roots a `path` may lie under; no roots = paths refused."""

    roots: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: dict | None = None) -> PathPolicy:
        env = os.environ if env is None else env
        if in_scoring_server(env) and env.get(ENV_IN_SERVER, "").strip() != "1":
            return cls()
        roots = [r for r in env.get(ENV_ROOTS, "").split(os.pathsep) if r.strip()]
        return cls(tuple(os.path.realpath(r) for r in roots))

    def allows(self, real: str) -> bool:
        return any(real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in self.roots)

    def read(self, path: object, max_bytes: int, where: str) -> bytes:
        """The bytes of an allowed regular file; RequestRefused(REFUSED) for anything else."""
        refused = RequestRefused(f"{where}: {REFUSED}")
        if not self.roots or not isinstance(path, str | Path) or not str(path):
            raise refused
        try:
            real = os.path.realpath(path)
            if not self.allows(real):
                raise refused
            before = os.stat(real)
            if not stat.S_ISREG(before.st_mode):
                raise refused
            fd = os.open(real, _OPEN_FLAGS)
        except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
            raise refused from exc
        try:
            now = os.fstat(fd)
            if not stat.S_ISREG(now.st_mode) or (now.st_dev, now.st_ino) != (before.st_dev, before.st_ino):
                raise refused
            if now.st_size > max_bytes:  # an allowed file: its size may be named
                raise RequestRefused(
                    f"{where}: image of {now.st_size} bytes exceeds the limit of {max_bytes} ({ENV_IMAGE_BYTES})"
                )
            with os.fdopen(fd, "rb", closefd=False) as handle:
                return handle.read(max_bytes + 1)
        except OSError as exc:
            raise refused from exc
        finally:
            os.close(fd)
