"""The one typed loader for params.yaml.

Every section is a frozen dataclass; unknown keys, missing required keys and wrong types
raise ConfigError with a one-line message that names the key (and a close match for typos).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from pipeline.errors import ConfigError

FORMATS = ("idc", "breakhis", "chest_xray", "tb", "imagefolder", "medmnist")


@dataclass(frozen=True)
class SampleConfig:
    patients: int = 24
    patches_per_patient: int = 150
    positive_fraction: float = 0.28
    image_size: int = 50
    seed: int = 0


@dataclass(frozen=True)
class DataConfig:
    source: str = "sample"  # sample | local dir | .zip/.tar(.gz) | s3://bucket/prefix
    format: Literal["idc", "breakhis", "chest_xray", "tb", "imagefolder", "medmnist"] = "idc"
    sample: SampleConfig = field(default_factory=SampleConfig)
    s3_endpoint_url: str | None = None
    s3_workers: int = 8
    max_archive_bytes: int = 64 * 2**30  # archive sources: refuse to unpack more than this
    max_archive_members: int = 2_000_000
    # format-specific knobs
    magnifications: tuple[int, ...] = (40, 100, 200, 400)  # breakhis
    classes: Literal["binary", "three"] = "binary"  # chest_xray
    patient_regex: str | None = None  # imagefolder
    positive_class: str | None = None  # name of the positive class; default: adapter's choice


@dataclass(frozen=True)
class PreprocessConfig:
    image_size: int = 50
    channels: Literal[1, 3] = 3


@dataclass(frozen=True)
class ValidateConfig:
    max_quarantine_fraction: float = 0.01
    min_side: int = 8
    max_side: int = 8192
    max_pixels: int = 100_000_000  # decompression-bomb guard
    workers: int = 0  # decode workers; 0 = 2 per core (overlaps file reads with decoding)


@dataclass(frozen=True)
class SplitConfig:
    seed: int = 42
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    respect_source_split: bool = False


@dataclass(frozen=True)
class AugmentConfig:
    rotate_deg: float = 25.0
    hflip: bool = True
    shift_px_at_1024: float = 50.0
    blur_kernels: tuple[int, ...] = (1, 3)


@dataclass(frozen=True)
class BalanceConfig:
    strategy: Literal["class_weight", "undersample", "oversample", "none"] = "class_weight"
    seed: int = 7
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass(frozen=True)
class TrainAugmentConfig:
    flip: bool = True  # random horizontal flip
    vflip: bool = True  # random vertical flip too (off for radiographs with a fixed orientation)
    rot90: bool = True  # random quarter turns (histology; off for radiographs)
    zoom: float = 0.1  # RandomZoom factor (fraction of the side)
    rotate_deg: float = 0.0  # RandomRotation by up to +-rotate_deg degrees (0 = off)
    translate: float = 0.0  # RandomTranslation by up to this fraction of the side (0 = off)


@dataclass(frozen=True)
class TrainConfig:
    model: Literal["baseline_cnn", "small_resnet", "densenet201", "mobilenetv2", "efficientnetb0"] = (
        "baseline_cnn"
    )
    weights: str = "none"  # imagenet | none | path to .weights.h5
    epochs: int = 12
    batch_size: int = 16
    learning_rate: float = 1e-3
    fine_tune_epochs: int = 0
    fine_tune_learning_rate: float = 1e-5
    loss: Literal["crossentropy", "focal"] = "crossentropy"
    dropout: float = 0.3
    early_stopping_patience: int = 4
    reduce_lr_patience: int = 2
    reduce_lr_factor: float = 0.5
    seed: int = 1234
    cache_mb: int = 1024  # decoded uint8 images kept in RAM when train+val fit; else streamed
    augment: TrainAugmentConfig = field(default_factory=TrainAugmentConfig)
    optimizer: Literal["adam", "adamw"] = "adam"
    weight_decay: float = 0.0  # decoupled weight decay; adamw only
    lr_schedule: Literal["plateau", "cosine"] = "plateau"  # plateau: ReduceLROnPlateau; cosine: per step
    warmup_epochs: int = 0  # cosine only: linear warm-up from 0 to learning_rate
    label_smoothing: float = 0.0
    width: int = 32  # small_resnet: filters of the first stage (then 2x, 4x)


@dataclass(frozen=True)
class EvaluateConfig:
    threshold: Literal["youden", "sensitivity", "fixed"] = "youden"
    target_sensitivity: float = 0.9
    fixed_threshold: float = 0.5
    tta: bool = False
    bootstrap: int = 200
    seed: int = 99


@dataclass(frozen=True)
class GateConfig:
    metric: str = "roc_auc"
    min_delta: float = 0.0
    guard_metrics: tuple[str, ...] = ("sensitivity",)
    max_drop: float = 0.05


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
        return tuple(_coerce(v, args[0], f"{key}[]") for v in value)
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
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in raw:
        if key not in names:
            where = f"{prefix}.{key}" if prefix else key
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(names)}"
            raise ConfigError(f"params: unknown key '{where}'{hint}")
    kwargs = {k: _coerce(v, hints[k], f"{prefix}.{k}" if prefix else k) for k, v in raw.items()}
    return cls(**kwargs)


def from_dict(raw: dict | None) -> Config:
    """Build a Config from a parsed params mapping (missing keys take their defaults)."""
    return _build(Config, raw or {})


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
