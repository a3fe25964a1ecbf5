"""Checks of params.yaml that relate several keys (or a key and a file): each returns a one-line
message or None. pipeline.config.loader.from_dict runs CROSS_CHECKS after the per-key types and ranges."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.config.floors import check_floors
from pipeline.config.naming import name_problem
from pipeline.config.table_checks import TABLE_CHECKS
from pipeline.config.train_checks import TRAIN_CHECKS
from pipeline.core.redact import has_userinfo, redact

if TYPE_CHECKING:
    from pipeline.config.schema import Config

MAX_INPUT_BATCH_BYTES = 4 * 2**30  # one float32 input batch (batch_size x side^2 x channels x 4)


def _split_fractions(cfg: Config) -> str | None:
    total = cfg.split.val_fraction + cfg.split.test_fraction
    if total >= 1:
        return (
            f"params: split.val_fraction + split.test_fraction is {total:g}; "
            "accepted range: value < 1 (the rest is the train split)"
        )
    return None


def _sides(cfg: Config) -> str | None:
    v = cfg.validate
    if v.min_side > v.max_side:
        return f"params: validate.min_side ({v.min_side}) is above validate.max_side ({v.max_side})"
    if cfg.preprocess.image_size > v.max_side:
        return f"params: preprocess.image_size ({cfg.preprocess.image_size}) is above validate.max_side ({v.max_side})"
    return None


def _input_batch_memory(cfg: Config) -> str | None:
    side, channels, batch = cfg.preprocess.image_size, cfg.preprocess.channels, cfg.train.batch_size
    need = batch * side * side * channels * 4
    if need > MAX_INPUT_BATCH_BYTES:
        return (
            f"params: train.batch_size {batch} x preprocess.image_size {side}^2 x {channels} channels is "
            f"{need / 2**30:.1f} GiB per float32 input batch; accepted: <= {MAX_INPUT_BATCH_BYTES // 2**30} GiB "
            "(lower one of them)"
        )
    return None


def _weights(cfg: Config) -> str | None:
    """imagenet | none | a Keras .weights.h5 or Keras-published *_notop.h5 file (HDF5); loading
    itself is pipeline.models'."""
    weights = cfg.train.weights
    if weights == "imagenet" or weights.lower() == "none":
        return None
    if not weights.lower().endswith(".h5"):
        return (
            f"params: 'train.weights' is {weights!r}; accepted: imagenet, none or the path of a Keras "
            ".weights.h5 or *_notop.h5 file"
        )
    path = Path(weights)
    if path.is_file():
        with path.open("rb") as fh:
            if fh.read(8) != b"\x89HDF\r\n\x1a\n":
                return f"params: 'train.weights' file {weights} is not an HDF5 (.weights.h5) file"
    return None


# URL-valued keys that must never carry credentials, and where credentials belong instead
_CREDENTIAL_HOME = {
    "data.source": "the AWS credential chain (AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, an instance role)",
    "data.s3_endpoint_url": "the AWS credential chain (AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, an instance role)",
    "registry.tracking_uri": "MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD or the MLFLOW_TRACKING_URI environment variable",
    "registry.artifact_uri": "the AWS credential chain (AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, an instance role)",
}


def _no_credentials(cfg: Config) -> str | None:
    """URLs with user info (`s3://KEY:SECRET@bucket`): params.yaml is committed and logged."""
    for key, home in _CREDENTIAL_HOME.items():
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if isinstance(value, str) and has_userinfo(value):
            return (
                f"params: '{key}' holds credentials ({redact(value)}); params are committed and logged: "
                f"remove them and use {home}"
            )
    return None


def _model_name(cfg: Config) -> str | None:
    """A registered model name MLflow accepts (a derived one always does)."""
    name = cfg.registry.model_name
    return name_problem(name) if name is not None else None


def _changes_permutations(cfg: Config) -> str | None:
    """A permutation test cannot reach p < alpha with fewer than 1/alpha - 1 permutations."""
    c = cfg.changes
    smallest = 1.0 / (c.n_perm + 1)
    if smallest >= c.alpha:
        return (
            f"params: changes.n_perm ({c.n_perm}) gives p-values >= {smallest:.3g}, never below "
            f"changes.alpha ({c.alpha:g}); accepted: n_perm >= {int(1.0 / c.alpha)}"
        )
    return None


# Checks across keys: each returns a one-line message or None. Add new ones here.
CROSS_CHECKS = (
    _split_fractions,
    _sides,
    _input_batch_memory,
    _weights,
    _no_credentials,
    _model_name,
    check_floors,
    _changes_permutations,
    *TRAIN_CHECKS,
    *TABLE_CHECKS,
)
