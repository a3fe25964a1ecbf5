"""A default `dvc repro` prints progress, stage summaries and actionable warnings only: the medpipe
CLI's quiet defaults, the absl banner filter, MLflow's pip note, and the flows' levels and telemetry."""

from __future__ import annotations

import logging
import os

from helpers.log_noise import noise_lines

from flows.dvc_runner import line_level
from pipeline.cli import quiet

ABSL_INFO = (
    "I0000 00:00:1796587489.364525    3084 port.cc:153] oneDNN custom operations are on. You may see "
    "slightly different numerical results"
)


def test_configure_sets_quiet_defaults_but_a_set_value_wins(monkeypatch):
    for key in quiet.ENV_DEFAULTS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("MLFLOW_LOGGING_LEVEL", "DEBUG")
    quiet.configure(None)
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "1"  # TF warnings and errors still print
    assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "false"
    assert os.environ["MLFLOW_LOGGING_LEVEL"] == "DEBUG"


def test_mlflow_pip_note_is_dropped_other_environment_warnings_are_kept(monkeypatch):
    for key in quiet.ENV_DEFAULTS:
        monkeypatch.delenv(key, raising=False)
    quiet.configure(None)
    logger = logging.getLogger("mlflow.utils.environment")

    def record(msg: str) -> logging.LogRecord:
        return logger.makeRecord(logger.name, logging.WARNING, __file__, 1, msg, (), None)

    assert not logger.filter(record("Failed to resolve installed pip version. ``pip`` will be added"))
    assert logger.filter(record("Encountered an unexpected error while inferring pip requirements"))


def test_native_stderr_filter_drops_absl_info_and_keeps_warnings_and_errors(capfd):
    with quiet.native_stderr_filtered():
        os.write(
            2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        )
        os.write(2, f"{ABSL_INFO}\n".encode())
        os.write(2, b"W0000 00:00:1796587489.4    3084 gpu_device.cc:2] Cannot dlopen some GPU libraries\n")
        os.write(2, b"E0000 00:00:1796587489.5    3084 cuda_dnn.cc:8] Unable to register cuDNN factory\n")
    err = capfd.readouterr().err
    assert "oneDNN" not in err and "absl::InitializeLog" not in err
    assert "Cannot dlopen some GPU libraries" in err and "Unable to register cuDNN factory" in err


def test_noise_list_matches_the_lines_a_repro_used_to_print():
    log = "\n".join(
        [
            "WARNING: 'data/interim/extracted' is empty.",
            "WARNING: 'checkpoints' is empty.",
            ABSL_INFO,
            "2026/12/06 20:05:00 INFO mlflow.store.db.utils: Creating initial MLflow database tables...",
            "2026/12/06 20:06:29 WARNING mlflow.utils.environment: Failed to resolve installed pip version.",
            "\rDownloading artifacts:   0%|          | 0/1 [00:00<?, ?it/s]\rDownloading artifacts: 100%",
            "20:06:22 INFO pipeline.stages.evaluate: evaluate: 559 test images / 4 patients",
            "20:06:20 WARNING pipeline.evaluation.scoring: patient level: set evaluate.threshold: fixed",
            "Use `dvc push` to send your updates to remote storage.",
        ]
    )
    assert [name for name, _ in noise_lines(log)] == [
        "dvc empty out", "dvc empty out", "absl/TF INFO", "MLflow INFO", "MLflow pip note", "MLflow progress bar"
    ]  # fmt: skip
    assert noise_lines(log, unsilenceable=True)[-1] == (
        "dvc push hint", "Use `dvc push` to send your updates to remote storage."
    )  # fmt: skip


def test_flow_relay_keeps_the_level_of_mlflow_dated_lines():
    assert line_level("2026/12/06 20:05:00 INFO mlflow.store.db.utils: Creating tables", True) == logging.INFO
    assert line_level("2026/12/06 20:05:00 WARNING mlflow.models: odd", True) == logging.WARNING
    assert line_level("20:06:20 WARNING pipeline.evaluation.scoring: x", True) == logging.WARNING
    assert line_level("ERROR: failed to reproduce 'train'", True) == logging.ERROR


def test_flows_turn_prefect_analytics_off():
    from prefect.settings import Settings

    import flows  # noqa: F401  (sets the defaults at import)

    assert os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false" and os.environ["DO_NOT_TRACK"] == "1"
    assert Settings().server.analytics_enabled is False  # what the ephemeral server reads
