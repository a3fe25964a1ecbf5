"""Quiet third-party start-up output, so a `dvc repro` log holds progress, each stage's summary and
warnings a user can act on.

What goes: TensorFlow's C++ INFO lines (oneDNN / CPU-feature banners, twice per process), absl's
"before InitializeLog" notice, MLflow's INFO lines and artifact progress bars, and MLflow's note that
pip is not installed (a uv venv has none; the pyfunc pins its requirements itself). TensorFlow and
MLflow warnings and errors still show. A value already set in the environment wins.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator

ENV_DEFAULTS = {
    "TF_CPP_MIN_LOG_LEVEL": "1",  # TF C++: warnings and errors only
    "MLFLOW_LOGGING_LEVEL": "WARNING",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}
# Stages that import Keras; it is imported up front with absl's INFO banners dropped.
KERAS_STAGES = frozenset({"changes", "train", "evaluate"})
# absl INFO lines (`I0000 00:00:1796587489.364525    3084 port.cc:153] oneDNN custom operations are on...`) and the notice
# absl prints before them; W/E/F lines are kept.
NATIVE_NOISE = re.compile(
    r"^(?:I\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] .*"
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR)$"
)
PIP_NOTE = "Failed to resolve installed pip version"


class _DropPipNote(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(PIP_NOTE)


def configure(stage: str | None = None) -> None:
    """Set the quiet defaults (before TensorFlow or MLflow are imported); for a Keras stage,
    import Keras now with absl's start-up banners dropped."""
    for key, value in ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    environment = logging.getLogger("mlflow.utils.environment")
    if not any(isinstance(f, _DropPipNote) for f in environment.filters):
        environment.addFilter(_DropPipNote())
    if stage in KERAS_STAGES:
        with native_stderr_filtered():
            import keras  # noqa: F401  (the backend's native libraries print at load)


@contextlib.contextmanager
def native_stderr_filtered() -> Iterator[None]:
    """Capture file descriptor 2 (native libraries write there directly) for the body, then write
    back every line that is not an absl INFO line or its notice."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [
                line
                for line in captured.read().decode(errors="replace").splitlines()
                if not NATIVE_NOISE.match(line)
            ]
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")
                sys.stderr.flush()
