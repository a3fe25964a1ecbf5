"""Model-card facts: data provenance (manifest hashes, counts per class and split), intended use
and limitations, for the report and metrics.json."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from pipeline.config import Config
from pipeline.config.split_level import image_level_warning
from pipeline.core.manifest import SPLITS
from pipeline.evaluation.patient_fraction import FRACTION

INTENDED_USE = (
    "Research and clinical decision support only; not a diagnostic device. Predictions must be "
    "reviewed by a qualified clinician and must not be the sole basis of a diagnosis or treatment."
)
TRAIN_KEYS = (
    "epochs_run",
    "best_epoch",
    "best_val_loss",
    "best_val_accuracy",
    "n_train",
    "n_val",
    "wall_seconds",
)


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes (identifies a frozen manifest)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def split_facts(splits_dir: Path, classes: list[str]) -> list[dict]:
    """One row per split manifest present: name, sha256, images, patients, images per class."""
    rows = []
    for name in SPLITS:
        path = Path(splits_dir) / f"{name}.csv"
        if not path.is_file():
            continue
        df = pd.read_csv(
            path,
            usecols=lambda c: c in ("label", "patient_id"),
            dtype={"patient_id": str},
            keep_default_na=False,
        )
        counts = df["label"].value_counts() if "label" in df.columns else pd.Series(dtype=int)
        rows.append(
            {
                "split": name,
                "sha256": file_sha256(path),
                "images": len(df),
                "patients": int(df["patient_id"].nunique()) if "patient_id" in df.columns else None,
                "per_class": {c: int(counts.get(i, 0)) for i, c in enumerate(classes)},
            }
        )
    return rows


def limitations(
    cfg: Config, label_map: dict, n_test_patients: int, patient_mode: str | None = None
) -> list[str]:
    """Plain-language limits of the evaluation shown in the model card."""
    fmt = label_map.get("format") or cfg.data.format
    notes = []
    if fmt == "idc" and cfg.data.source == "sample":
        notes.append(
            "Trained and evaluated on the embedded SYNTHETIC sample data (data.source: sample); the "
            "metrics say nothing about performance on real histopathology."
        )
    warning = image_level_warning(cfg)
    if warning:  # the test patients also have images in train: no patient-level figures
        notes.append(warning + " Patient-level metrics are left out for the same reason.")
    elif patient_mode == FRACTION:
        notes.append(
            f"The test set holds {n_test_patients} patients, each with images of both classes (slides), "
            "so patients are not classified: patient level is the agreement of each patient's "
            "predicted share of positive images with its true share (MAE, Pearson r), on few patients."
        )
    else:
        notes.append(
            f"The test set holds {n_test_patients} patients; patient-level metrics rest on few patients and "
            "their confidence intervals are wide. Patient label rule: positive if any image is positive "
            "(binary) or the most frequent image label (multi-class); patient probability is the mean of "
            "image probabilities, which dilutes patients with few abnormal images."
        )
    notes.append(
        "Dataset shift: scanners, staining protocols, X-ray devices, patient populations and disease "
        "prevalence differ between sites; PPV/NPV depend on prevalence and do not transfer to a "
        "population with a different one. Re-validate locally before any use."
    )
    notes.append(
        "The operating threshold was chosen on the validation split and may need recalibration at a new site."
    )
    return notes


def train_facts(summary: dict) -> dict:
    """The few train_summary.json fields the card shows (model name from its params)."""
    facts = {k: summary[k] for k in TRAIN_KEYS if k in summary}
    model = (summary.get("params") or {}).get("train", {}).get("model")
    return {"model": model, **facts} if model else facts
