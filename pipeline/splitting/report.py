"""Checks and the DVC metrics report of the split stage (pipeline/stages/split.py)."""

from __future__ import annotations

import itertools
import logging

import pandas as pd

from pipeline.config import SplitConfig
from pipeline.config.split_level import IMAGE_LEVEL_WARNING
from pipeline.core.errors import DataError
from pipeline.core.manifest import SPLITS

log = logging.getLogger(__name__)


def _shared(df: pd.DataFrame, column: str) -> list[tuple[str, str, str]]:
    """(value, split a, split b) for every value of `column` found in two splits."""
    values = {name: set(df.loc[df["split"] == name, column].dropna()) for name in SPLITS}
    return [
        (value, a, b) for a, b in itertools.combinations(SPLITS, 2) for value in sorted(values[a] & values[b])
    ]


def check_no_leak(df: pd.DataFrame, image_level: bool = False) -> dict[str, int]:
    """Raise DataError naming offenders if a patient or an image (sha256) is in two splits; an
    image-level split only promises the images (shared patients are counted)."""
    counts = {}
    for column, what in (("patient_id", "patient"), ("sha256", "image sha256")):
        shared = _shared(df, column)
        if shared and image_level and column == "patient_id":
            counts[f"shared_{column}"] = len({value for value, _, _ in shared})
            continue
        if shared:
            named = ", ".join(f"{v} ({a}+{b})" for v, a, b in shared[:3])
            raise DataError(
                f"split leak: {len(shared)} {what}(s) in two splits, e.g. {named}; this is a bug, report it"
            )
        counts[f"shared_{column}"] = 0
    return counts


def check_classes(df: pd.DataFrame) -> None:
    """Every split must hold every class (evaluation and thresholds need them)."""
    classes = sorted(df["label"].unique())
    for name in SPLITS:
        present = set(df.loc[df["split"] == name, "label"])
        lacking = [str(c) for c in classes if c not in present]
        if lacking:
            raise DataError(
                f"split '{name}' has no image of class(es) {', '.join(lacking)}; add patients of that class "
                "or change split.val_fraction/test_fraction/seed"
            )


MAX_FRACTION_MISS = 0.05  # achieved vs requested share of the images, absolute


def fraction_warnings(
    fraction: dict[str, float], cfg: SplitConfig, official: tuple[str, ...] = ()
) -> list[str]:
    """One sentence per split whose achieved share misses the requested one by > 5 points (whole
    patients move together, so few or very unequal patients make exact fractions impossible);
    splits in `official` (kept from the source) are not compared."""
    requested = {
        "train": 1 - cfg.val_fraction - cfg.test_fraction,
        "val": cfg.val_fraction,
        "test": cfg.test_fraction,
    }
    out = []
    for name, want in requested.items():
        got = fraction.get(name)
        if got is None or name in official or abs(got - want) <= MAX_FRACTION_MISS:
            continue
        out.append(
            f"split {name} holds {got:.1%} of the images, requested {want:.1%} (patients are kept whole; "
            "with few or unequal patients the fractions cannot be met)"
        )
    return out


def _class_names(df: pd.DataFrame) -> pd.Series:
    """class_name per row (label as text where missing)."""
    if "class_name" in df:
        return df["class_name"].fillna(df["label"].astype("string"))
    return df["label"].astype("string")


def build(df: pd.DataFrame, info: dict, cfg: SplitConfig) -> dict:
    """Per-split and per-class-per-split image/patient counts, fractions, leak check, source info."""
    patients = df["patient_id"].fillna("row:" + df["path"])
    classes = _class_names(df)
    total = len(df)
    by_split = {name: df["split"] == name for name in SPLITS}
    per_class = {
        str(cls): {
            name: {
                "images": int((mask & (classes == cls)).sum()),
                "patients": int(patients[mask & (classes == cls)].nunique()),
            }
            for name, mask in by_split.items()
        }
        for cls in sorted(classes.unique())
    }
    fraction = {name: round(int(m.sum()) / total, 6) for name, m in by_split.items()}
    official = tuple(n for n in ("test", "val") if info.get(f"{n}_official") and not info.get(f"{n}_carved"))
    if official and "train" not in official:
        official = (*official, "train")  # train is what the official splits leave
    warnings = fraction_warnings(fraction, cfg, official)
    for line in warnings:
        log.warning(line)
    return {
        "seed": cfg.seed,
        "requested_fraction": {
            "train": round(1 - cfg.val_fraction - cfg.test_fraction, 6),
            "val": cfg.val_fraction,
            "test": cfg.test_fraction,
        },
        "fraction": fraction,
        "fraction_warnings": warnings,
        "n_images": {**{name: int(m.sum()) for name, m in by_split.items()}, "total": total},
        "n_patients": {
            **{name: int(patients[m].nunique()) for name, m in by_split.items()},
            "total": int(patients.nunique()),
        },
        "per_class": per_class,
        "image_level": bool(info.get("image_level")),
        "image_level_warning": IMAGE_LEVEL_WARNING if info.get("image_level") else None,
        "leak_check": check_no_leak(df, bool(info.get("image_level"))),
        "merged_patient_groups": info.get("merged_patient_groups", 0),
        "source_split": {k: v for k, v in info.items() if k not in ("merged_patient_groups", "image_level")},
    }
