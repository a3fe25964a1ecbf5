"""The validate stage's inputs: -i/-o keys, params sanity, manifest and labels.json reading."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.config import Config
from pipeline.core import manifest
from pipeline.core.errors import ConfigError, DataError, MedpipeError
from pipeline.validation import rows

INPUTS = ("manifest", "labels")
OUTPUTS = ("validated", "quarantine", "summary", "docs")
REQUIRED = ["path", "sha256", "label", "class_name", "patient_id"]


def check_keys(inputs: dict[str, Path], outputs: dict[str, Path]) -> None:
    """MedpipeError naming the -i/-o keys the caller left out."""
    missing = [f"-i {k}=PATH" for k in INPUTS if k not in inputs] + [
        f"-o {k}=PATH" for k in OUTPUTS if k not in outputs
    ]
    if missing:
        raise MedpipeError(
            f"stage validate is missing {', '.join(missing)}; see the validate stage in dvc.yaml"
        )


def check_params(cfg: Config) -> None:
    """ConfigError for validate params that cannot work together."""
    v = cfg.validate
    if not 0.0 <= v.max_quarantine_fraction <= 1.0:
        raise ConfigError(
            f"params: 'validate.max_quarantine_fraction' is {v.max_quarantine_fraction}; use 0..1"
        )
    if not 1 <= v.min_side <= v.max_side:
        raise ConfigError(
            f"params: need 1 <= validate.min_side ({v.min_side}) <= validate.max_side ({v.max_side})"
        )
    if v.max_pixels < 1 or v.workers < 0:
        raise ConfigError(
            "params: 'validate.max_pixels' must be >= 1 and 'validate.workers' >= 0 (0 = all cores)"
        )


def read_inputs(inputs: dict[str, Path]) -> tuple[pd.DataFrame, list[str]]:
    """The manifest and the class names; DataError with one line for anything unreadable."""
    try:
        labels = manifest.read_json(inputs["labels"])
    except ValueError as exc:
        raise DataError(f"{inputs['labels']} is not valid JSON ({exc}); rerun regroup") from exc
    classes = rows.load_classes(labels, str(inputs["labels"]))
    try:
        df = manifest.read(inputs["manifest"], required=REQUIRED)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"manifest {inputs['manifest']} is not a readable CSV ({first}); rerun regroup"
        ) from exc
    if df.empty:
        raise DataError(
            f"manifest {inputs['manifest']} has no rows; check data.source and rerun ingest/regroup"
        )
    return df, classes
