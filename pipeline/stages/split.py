"""split stage: stratified, patient-grouped, seeded train/val/test manifests.

Patients are grouped (patients sharing an image sha256 are merged into one group, so a
duplicate image across patients lands in ONE split; the report counts merges) and splits are
carved with scikit-learn's StratifiedGroupKFold (pipeline/splitting/groups.py): test first
(test_fraction of all images), then val from the rest (val_fraction of all images). Fractions
are set per dataset in params.yaml (e.g. 0.2/0.2 for the small TB sets = 60/20/20; 0.15/0.15
for IDC). Output rows are sorted by path; the leak check raises DataError naming offenders.

respect_source_split: rows whose source_split is test stay the test set untouched; an official
val is kept unless it is tiny (< half the requested val share of the official rows, e.g.
Kermany's 16 images), then it joins train and val is carved from train by patient. A row that
shares a patient or image with a higher-priority official split (test > val > train) is dropped
and counted (it would leak). Rows with a null source_split go through the normal split.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import Config, SplitConfig
from pipeline.config.split_level import IMAGE_LEVEL_WARNING
from pipeline.core import manifest
from pipeline.core.errors import ConfigError, DataError
from pipeline.core.manifest import SPLITS
from pipeline.splitting import report as split_report
from pipeline.splitting.groups import (
    IMAGE_LEVEL_HINT,
    carve,
    image_groups,
    patient_groups,
    patient_keys,
    require_groups_per_class,
    split_pool,
    too_few_groups,
)

log = logging.getLogger(__name__)
REQUIRED = ["path", "sha256", "label", "patient_id"]
PRIORITY = {"test": 0, "val": 1, "train": 2}


def check_fractions(cfg: SplitConfig) -> None:
    """ConfigError unless 0 < val, test < 1 and val + test < 1."""
    for key in ("val_fraction", "test_fraction"):
        value = getattr(cfg, key)
        if not 0.0 < value < 1.0:
            raise ConfigError(f"params: split.{key} is {value}; use a fraction strictly between 0 and 1")
    if cfg.val_fraction + cfg.test_fraction >= 1.0:
        raise ConfigError(
            "params: split.val_fraction + split.test_fraction must be < 1 to leave a train split"
        )


def choose_groups(df: pd.DataFrame, labels: np.ndarray, cfg: SplitConfig) -> tuple[np.ndarray, bool]:
    """(group id per row, image_level): patient groups, or one group per image where
    split.allow_image_level is set and the patients are too few for a patient split."""
    groups = patient_groups(df)
    if not cfg.allow_image_level:
        return groups, False
    if too_few_groups(labels, groups, 3, "the validated manifest") is None:
        raise DataError(
            f"split.allow_image_level is true but the data has {len(np.unique(groups))} patient groups, "
            "enough to split by patient; set split.allow_image_level: false"
        )
    log.warning(IMAGE_LEVEL_WARNING)
    return image_groups(df), True


def image_level_hint(labels: np.ndarray, images: np.ndarray) -> str:
    """IMAGE_LEVEL_HINT where an image-level split could split these rows (3 images per class),
    else "": the stop line never names an option that would stop the next run too."""
    return IMAGE_LEVEL_HINT if too_few_groups(labels, images, 3, "") is None else ""


def source_assignment(
    df: pd.DataFrame, labels: np.ndarray, groups: np.ndarray, cfg: SplitConfig
) -> tuple[np.ndarray, dict]:
    """Split names honouring source_split ('' = dropped); null-source rows get the normal split."""
    source = df["source_split"].str.strip().str.lower()
    bad = sorted(set(source.dropna()) - set(PRIORITY))
    if bad:
        raise DataError(f"source_split has value(s) {bad}; expected train, val, test or empty")
    rank = source.map(PRIORITY).fillna(3).to_numpy(int)
    group_rank = pd.Series(rank).groupby(groups).transform("min").to_numpy()
    names = np.array(["test", "val", "train", ""], dtype=object)
    out = names[group_rank]
    leaking = (rank != group_rank) & ((rank < 3) | (group_rank == 0))
    out[leaking] = ""
    official = rank < 3
    n_official = int((official & ~leaking).sum())
    info = {"respected": 1, "dropped_leaking_rows": int(leaking.sum()), "test_carved": 0, "val_carved": 0}
    for name, fraction, offset in (("test", cfg.test_fraction, 0), ("val", cfg.val_fraction, 1)):
        present = int((out == name).sum())
        info[f"{name}_official"] = present
        if present and (name == "test" or present >= 0.5 * fraction * n_official):
            continue  # an official test is never changed; a tiny official val is replaced
        if name == "val" and present:
            log.info(
                "source val has only %d image(s); merging it into train and carving val by patient", present
            )
            out[out == "val"] = "train"
        pool = np.flatnonzero(out == "train")
        taken = carve(labels[pool], groups[pool], round(fraction * n_official), cfg.seed + offset, name)
        out[pool[taken]] = name
        info[f"{name}_carved"] = 1
    free = np.flatnonzero(out == "")[~leaking[out == ""]]
    info["null_source_rows"] = len(free)
    if len(free):
        fl, fg = labels[free], groups[free]
        hint = "" if cfg.allow_image_level else image_level_hint(fl, image_groups(df)[free])
        require_groups_per_class(fl, fg, 3, "the rows without source_split", hint)
        out[free] = split_pool(
            fl, fg, round(cfg.test_fraction * len(free)), round(cfg.val_fraction * len(free)), cfg.seed
        )
    if info["dropped_leaking_rows"]:
        log.warning(
            "dropped %d row(s) sharing a patient/image with a higher official split",
            info["dropped_leaking_rows"],
        )
    return out, info


def assign(df: pd.DataFrame, cfg: SplitConfig) -> tuple[pd.DataFrame, dict]:
    """Return df (sorted by path, dropped rows removed) with a `split` column, and source info."""
    check_fractions(cfg)
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise DataError(
            f"validated manifest lacks column(s) {', '.join(missing)}; re-run regroup and validate"
        )
    if df.empty:
        raise DataError("validated manifest has no rows; check data.source and the validation report")
    if df["label"].isna().any():
        raise DataError(
            f"{int(df['label'].isna().sum())} row(s) have no label; fix the regroup adapter output"
        )
    df = df.sort_values("path", kind="mergesort").reset_index(drop=True)
    labels = df["label"].to_numpy(int)
    groups, image_level = choose_groups(df, labels, cfg)
    use_source = cfg.respect_source_split and "source_split" in df and df["source_split"].notna().any()
    if use_source:
        names, info = source_assignment(df, labels, groups, cfg)
    else:
        if cfg.respect_source_split:
            log.info("respect_source_split is on but no row has a source_split; using the normal split")
        hint = "" if image_level else image_level_hint(labels, image_groups(df))
        require_groups_per_class(labels, groups, 3, "the validated manifest", hint)
        n = len(df)
        names = split_pool(
            labels, groups, round(cfg.test_fraction * n), round(cfg.val_fraction * n), cfg.seed
        )
        info = {"respected": 0}
    info["merged_patient_groups"] = int(patient_keys(df).nunique() - len(np.unique(patient_groups(df))))
    info["image_level"] = image_level
    keep = names != ""
    return df.loc[keep].assign(split=pd.array(names[keep], dtype="string")).reset_index(drop=True), info


def run(cfg: Config, inputs: dict[str, Path], outputs: dict[str, Path]) -> dict:
    """Split inputs["validated"] into outputs["splits"]/{train,val,test}.csv + outputs["report"]."""
    df = manifest.read(inputs["validated"], required=REQUIRED)
    result, info = assign(df, cfg.split)
    split_report.check_classes(result)
    report = split_report.build(result, info, cfg.split)
    out_dir = Path(outputs["splits"])
    for name in SPLITS:
        manifest.write(result[result["split"] == name], out_dir / f"{name}.csv")
    manifest.write_json(report, outputs["report"])
    log.info("split %s images: %s", len(result), report["n_images"])
    return {"n_images": report["n_images"], "n_patients": report["n_patients"]}
