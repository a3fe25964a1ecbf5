"""The one typed loader for params.yaml.

Every section is a frozen dataclass; unknown keys, missing required keys, wrong types and
values outside their accepted range raise ConfigError with a one-line message that names the
key (and a close match for typos, or the accepted range). Every stage loads params through
here first, so an impossible value stops the run before any data is touched.

Ranges are declared on the field type: `batch_size: Annotated[int, Range(ge=1)] = 16`
(also inside lists: `tuple[Annotated[int, Range(ge=1)], ...]`); the aliases below cover the
common cases. Checks that relate several keys live in CROSS_CHECKS.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml

from pipeline.errors import ConfigError
from pipeline.redact import has_userinfo, redact


@dataclass(frozen=True)
class Range:
    """Accepted interval of a numeric key (any bound may be None); `odd` for kernel sizes."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    odd: bool = False

    def accepts(self, v: float) -> bool:
        if isinstance(v, float) and not math.isfinite(v):
            return False
        return not (
            (self.ge is not None and v < self.ge)
            or (self.gt is not None and v <= self.gt)
            or (self.le is not None and v > self.le)
            or (self.lt is not None and v >= self.lt)
            or (self.odd and v % 2 != 1)
        )

    def __str__(self) -> str:
        lo = (
            f"{_num(self.ge)} <= "
            if self.ge is not None
            else f"{_num(self.gt)} < "
            if self.gt is not None
            else ""
        )
        hi = (
            f" <= {_num(self.le)}"
            if self.le is not None
            else f" < {_num(self.lt)}"
            if self.lt is not None
            else ""
        )
        if lo and not hi:  # "value >= 1" reads better than "1 <= value"
            bound, op = lo.split()
            lo, hi = "", f" {op.replace('<', '>')} {bound}"
        return f"{lo}value{hi}" + (", odd" if self.odd else "")


def _num(v: float) -> str:
    return f"{v:g}" if isinstance(v, float) else f"{v:,}".replace(",", "_") if abs(v) >= 100_000 else str(v)


SEED_MAX = 2**32 - 1  # numpy / Keras seeds
Seed = Annotated[int, Range(ge=0, le=SEED_MAX)]
Count = Annotated[int, Range(ge=0)]  # 0 allowed (off / none)
Positive = Annotated[int, Range(ge=1)]
Fraction = Annotated[float, Range(ge=0, lt=1)]  # [0, 1)
Probability = Annotated[float, Range(ge=0, le=1)]  # [0, 1]
Rate = Annotated[float, Range(gt=0, le=1)]  # learning rates: (0, 1]
Degrees = Annotated[float, Range(ge=0, le=180)]
Side = Annotated[int, Range(ge=8, le=2048)]  # model input side in pixels
Workers = Annotated[int, Range(ge=0, le=512)]
MAX_INPUT_BATCH_BYTES = 4 * 2**30  # one float32 input batch (batch_size x side^2 x channels x 4)

FORMATS = ("idc", "breakhis", "chest_xray", "tb", "imagefolder", "medmnist")


@dataclass(frozen=True)
class SampleConfig:
    patients: Positive = 24
    patches_per_patient: Positive = 150
    positive_fraction: Probability = 0.28
    image_size: Side = 50
    seed: Seed = 0


@dataclass(frozen=True)
class DataConfig:
    source: str = "sample"  # sample | local dir | .zip/.tar(.gz) | s3://bucket/prefix
    format: Literal["idc", "breakhis", "chest_xray", "tb", "imagefolder", "medmnist"] = "idc"
    sample: SampleConfig = field(default_factory=SampleConfig)
    s3_endpoint_url: str | None = None
    s3_workers: Annotated[int, Range(ge=1, le=512)] = 8
    max_archive_bytes: Positive | None = None  # archive sources: optional cap; always: must fit the free disk
    max_archive_members: Positive = 2_000_000
    # format-specific knobs
    magnifications: tuple[Positive, ...] = (40, 100, 200, 400)  # breakhis
    label: Literal["class", "tumor_type"] = "class"  # breakhis: benign/malignant | the 8 tumour types
    classes: Literal["binary", "three"] = "binary"  # chest_xray
    patient_regex: str | None = None  # imagefolder
    positive_class: str | None = None  # name of the positive class; default: adapter's choice


@dataclass(frozen=True)
class PreprocessConfig:
    image_size: Side = 50
    channels: Literal[1, 3] = 3


@dataclass(frozen=True)
class ValidateConfig:
    max_quarantine_fraction: Probability = 0.01
    min_side: Positive = 8
    max_side: Positive = 8192
    max_pixels: Positive = 100_000_000  # decompression-bomb guard
    workers: Workers = 0  # decode workers; 0 = 2 per core (overlaps file reads with decoding)


@dataclass(frozen=True)
class SplitConfig:
    seed: Seed = 42
    val_fraction: Annotated[float, Range(gt=0, lt=1)] = 0.15
    test_fraction: Annotated[float, Range(gt=0, lt=1)] = 0.15
    respect_source_split: bool = False


@dataclass(frozen=True)
class AugmentConfig:
    rotate_deg: Degrees = 25.0
    hflip: bool = True
    shift_px_at_1024: Annotated[float, Range(ge=0, le=512)] = 50.0
    blur_kernels: tuple[Annotated[int, Range(ge=1, le=99, odd=True)], ...] = (1, 3)


@dataclass(frozen=True)
class BalanceConfig:
    strategy: Literal["class_weight", "undersample", "oversample", "none"] = "class_weight"
    seed: Seed = 7
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass(frozen=True)
class TrainAugmentConfig:
    flip: bool = True  # random horizontal flip
    vflip: bool = True  # random vertical flip too (off for radiographs with a fixed orientation)
    rot90: bool = True  # random quarter turns (histology; off for radiographs)
    zoom: Fraction = 0.1  # RandomZoom factor (fraction of the side)
    rotate_deg: Degrees = 0.0  # RandomRotation by up to +-rotate_deg degrees (0 = off)
    translate: Fraction = 0.0  # RandomTranslation by up to this fraction of the side (0 = off)


@dataclass(frozen=True)
class TrainConfig:
    model: Literal["baseline_cnn", "small_resnet", "densenet201", "mobilenetv2", "efficientnetb0"] = (
        "baseline_cnn"
    )
    weights: str = "none"  # imagenet | none | path to a .weights.h5 / Keras *_notop.h5 file
    epochs: Annotated[int, Range(ge=1, le=100_000)] = 12
    batch_size: Annotated[int, Range(ge=1, le=65_536)] = 16
    learning_rate: Rate = 1e-3
    fine_tune_epochs: Annotated[int, Range(ge=0, le=100_000)] = 0
    fine_tune_learning_rate: Rate = 1e-5
    loss: Literal["crossentropy", "focal"] = "crossentropy"
    dropout: Fraction = 0.3
    early_stopping_patience: Count = 4
    reduce_lr_patience: Count = 2
    reduce_lr_factor: Annotated[float, Range(gt=0, lt=1)] = 0.5
    seed: Seed = 1234
    augment: TrainAugmentConfig = field(default_factory=TrainAugmentConfig)
    optimizer: Literal["adam", "adamw"] = "adam"
    weight_decay: Fraction = 0.0  # decoupled weight decay; adamw only
    lr_schedule: Literal["plateau", "cosine"] = "plateau"  # plateau: ReduceLROnPlateau; cosine: per step
    warmup_epochs: Count = 0  # cosine only: linear warm-up from 0 to learning_rate
    label_smoothing: Fraction = 0.0
    width: Annotated[int, Range(ge=1, le=1024)] = 32  # small_resnet: filters of the first stage (then 2x, 4x)
    # > 0: before each validation, BatchNorm statistics := the average over this many training
    # batches under the current weights (PreciseBN); 0 = Keras' moving averages as they are
    precise_bn_batches: Annotated[int, Range(ge=0, le=100_000)] = 0
    # small_resnet: stride of the stem; 2 = every feature map halved, ~4x fewer FLOPs
    stem_stride: Annotated[int, Range(ge=1, le=4)] = 1
    # what selects the checkpoint and stops early; auto = val_auc (binary) | val_balanced_accuracy
    monitor: Literal["auto", "val_loss", "val_auc", "val_balanced_accuracy", "val_macro_auc"] = "auto"
    ensemble: Annotated[int, Range(ge=1, le=64)] = (
        1  # train N seeds (seed, seed+1, ...), save one averaged model
    )


@dataclass(frozen=True)
class EvaluateConfig:
    threshold: Literal["youden", "sensitivity", "fixed"] = "youden"
    target_sensitivity: Annotated[float, Range(gt=0, le=1)] = 0.9
    fixed_threshold: Probability = 0.5
    tta: bool = False
    bootstrap: Annotated[int, Range(ge=0, le=100_000)] = 200
    seed: Seed = 99


@dataclass(frozen=True)
class GateConfig:
    metric: str = "roc_auc"
    min_delta: Probability = 0.0
    guard_metrics: tuple[str, ...] = ("sensitivity",)
    max_drop: Probability = 0.05


@dataclass(frozen=True)
class RegistryConfig:
    model_name: str = "medpipe-idc"
    tracking_uri: str = "sqlite:///mlflow.db"  # MLFLOW_TRACKING_URI overrides
    artifact_uri: str | None = None  # e.g. s3://bucket/prefix
    experiment: str = "medpipe"


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    validate: ValidateConfig = field(default_factory=ValidateConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    balance: BalanceConfig = field(default_factory=BalanceConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    registry: RegistryConfig = field(default_factory=RegistryConfig)


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Annotated:
        out = _coerce(value, args[0], key)
        for rng in (m for m in tp.__metadata__ if isinstance(m, Range)):
            if not rng.accepts(out):
                raise ConfigError(f"params: '{key}' is {value!r}; accepted range: {rng}")
        return out
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"params: '{key}' must be a mapping, got {value!r}")
        return _build(tp, value, key)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"params: '{key}' is {value!r}; expected one of {', '.join(map(repr, args))}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"params: '{key}' must be a list, got {value!r}")
        return tuple(_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"params: '{key}' must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"params: '{key}' must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"params: '{key}' must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"params: '{key}' must be a string, got {value!r}")
        return value
    return value


def _build(cls: type, raw: dict, prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls, include_extras=True)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in raw:
        if key not in names:
            where = f"{prefix}.{key}" if prefix else key
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(names)}"
            raise ConfigError(f"params: unknown key '{where}'{hint}")
    kwargs = {k: _coerce(v, hints[k], f"{prefix}.{k}" if prefix else k) for k, v in raw.items()}
    return cls(**kwargs)


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


# Checks across keys: each returns a one-line message or None. Add new ones here.
CROSS_CHECKS = (_split_fractions, _sides, _input_batch_memory, _weights, _no_credentials)


def from_dict(raw: dict | None) -> Config:
    """Build a Config from a parsed params mapping (missing keys take their defaults)."""
    cfg = _build(Config, raw or {})
    for check in CROSS_CHECKS:
        message = check(cfg)
        if message:
            raise ConfigError(message)
    return cfg


def load(path: str | Path = "params.yaml") -> Config:
    """Read and type-check params.yaml."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"params file {path} not found; run from the project root or pass --params")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"params file {path} is not valid YAML: {exc}".splitlines()[0]) from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"params file {path} must be a mapping of sections")
    return from_dict(raw)


def to_dict(cfg: Config) -> dict:
    """Plain-dict view (for logging params with a model version)."""
    return dataclasses.asdict(cfg)
