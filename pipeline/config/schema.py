"""The sections of params.yaml as frozen dataclasses (pipeline.config.loader reads them).

Ranges are declared on the field type: `batch_size: Annotated[int, Range(ge=1)] = 16`
(also inside lists: `tuple[Annotated[int, Range(ge=1)], ...]`); aliases such as `Positive` cover the
common cases (both in pipeline.config.types). Checks that relate several keys live in
pipeline.config.checks.CROSS_CHECKS.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from pipeline.config.changes_schema import ChangesConfig
from pipeline.config.types import (
    Count,
    Degrees,
    Fraction,
    Positive,
    Probability,
    Range,
    Rate,
    Seed,
    Side,
    Workers,
)

FORMATS = ("idc", "breakhis", "chest_xray", "tb", "imagefolder", "medmnist", "dicom", "table")


@dataclass(frozen=True)
class SampleConfig:
    patients: Positive = 24
    patches_per_patient: Positive = 150
    positive_fraction: Probability = 0.28
    image_size: Side = 50
    seed: Seed = 0


@dataclass(frozen=True)
class DicomConfig:
    """data.format: dicom. frames: multi-frame files -> frame 0 | every frame its own image (regroup
    writes single-frame copies into extracted/) | a format_error row. voi: the file's own VOI LUT or
    window when present | always the dataset intensity window (regroup writes VOI-less copies)."""

    frames: Literal["first", "each", "refuse"] = "first"
    voi: Literal["header", "dataset"] = "header"


@dataclass(frozen=True)
class TableConfig:
    """data.format table: labels (and patients, official splits) read from a CSV/TSV/Parquet table
    beside the images (pipeline/formats/table.py; docs/data.md#label-tables)."""

    file: str | None = None  # the table, relative to data.source: labels.csv | .tsv | .parquet
    path_column: str = "path"  # image path relative to data.source (not to the table's folder)
    label_column: str | None = None  # one class name per row ...
    class_columns: tuple[str, ...] = ()  # ... or one 0/1 column per class (one-vs-rest)
    patient_column: str | None = None  # pseudonymised at regroup; null = one patient per image
    split_column: str | None = None  # official split (train/val/test + synonyms)


@dataclass(frozen=True)
class DataConfig:
    source: str = "sample"  # sample | local dir | .zip/.tar(.gz) | s3://bucket/prefix
    format: Literal["idc", "breakhis", "chest_xray", "tb", "imagefolder", "medmnist", "dicom", "table"] = (
        "idc"
    )
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
    dicom: DicomConfig = field(default_factory=DicomConfig)  # dicom
    positive_class: str | None = None  # name of the positive class; default: adapter's choice
    table: TableConfig = field(default_factory=TableConfig)  # table


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
    # split by image, not patient: only for data with too few patients for a patient split
    allow_image_level: bool = False


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
    epochs: Annotated[int, Range(ge=1, le=100_000)] | None = 12  # null with budget_images (not both)
    budget_images: Annotated[int, Range(ge=1, le=10**12)] | None = None  # image-steps (training.budget)
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
    warmup_images: Count = 0  # the same in image-steps, with train.budget_images
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


def _default_floors() -> dict:
    return {"roc_auc": 0.6, "sensitivity": 0.0, "balanced_accuracy": "chance"}


@dataclass(frozen=True)
class GateConfig:
    metric: str = "roc_auc"
    min_delta: Probability = 0.0
    guard_metrics: tuple[str, ...] = ("sensitivity",)
    max_drop: Probability = 0.05
    # metric -> floor; each must be strictly above it (pipeline.config.floors), champion or not
    min: dict[str, Probability | Literal["chance"]] = field(default_factory=_default_floors)
    # on the images added since the champion that are in the current test split (issue #19):
    # challenger >= champion - new_data_margin, checked when at least new_data_min_images
    new_data_margin: Probability = 0.02
    new_data_min_images: Annotated[int, Range(ge=2)] = 50


@dataclass(frozen=True)
class RegistryConfig:
    model_name: str | None = None  # None: derived from the data (pipeline.config.naming)
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
    changes: ChangesConfig = field(default_factory=ChangesConfig)
