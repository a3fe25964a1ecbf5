"""balance stage: handle class imbalance on the TRAIN split only.

Strategies (params balance.strategy):
- class_weight: rows unchanged; weights w_c = (N - n_c) / N (the chest X-ray paper's
  w_0 = n_1/N, w_1 = n_0/N, generalised to K classes). sklearn's
  compute_class_weight("balanced") is written alongside under `sklearn_balanced` for reference.
- undersample: seeded random drop of rows of every larger class down to the smallest class.
- oversample: every smaller class is topped up to the largest with augmented PNG copies
  (pipeline/balancing/augment.py) in <balanced>/augmented/<class>/<stem>_aug<k>.png; an augmented row
  keeps its source's patient_id and columns, points to the source via source_path and carries
  the new file's sha256/bytes.
- none: pass-through.
Weights are 1.0 for every strategy but class_weight. Every row gets source_path (= path for
originals) and augmented. Outputs: <balanced>/train.csv, <balanced>/class_weights.json
({"weights": {label: w}, "sklearn_balanced", "class_names", "counts", "strategy"}; keys are
label indices as strings) and <balanced>/augmented/ (always created), plus the report.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.utils import resample
from sklearn.utils.class_weight import compute_class_weight
from tqdm import tqdm

from pipeline.balancing import augment
from pipeline.config import BalanceConfig, Config
from pipeline.core import manifest
from pipeline.core.errors import DataError

log = logging.getLogger(__name__)
REQUIRED = ["path", "label"]


def paper_weights(labels: pd.Series) -> dict[str, float]:
    """w_c = (N - n_c) / N per label (binary: w_0 = n_1/N, w_1 = n_0/N)."""
    counts = labels.value_counts().sort_index()
    total = int(counts.sum())
    return {str(int(c)): float((total - n) / total) for c, n in counts.items()}


def sklearn_weights(labels: pd.Series) -> dict[str, float]:
    """compute_class_weight("balanced") = N / (K * n_c), for reference."""
    classes = np.sort(labels.unique().astype(int))
    values = compute_class_weight("balanced", classes=classes, y=labels.to_numpy(int))
    return {str(int(c)): float(w) for c, w in zip(classes, values, strict=True)}


def undersample(df: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Seeded random subset of every class down to the minority count."""
    smallest = int(df["label"].value_counts().min())
    parts = [
        resample(group, replace=False, n_samples=smallest, random_state=seed + int(label))
        for label, group in df.groupby("label", sort=True)
    ]
    return pd.concat(parts)


def _safe(name: str) -> str:
    """A class name usable as a folder name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "class"


def _stems(paths: pd.Series) -> pd.Series:
    """File stem per path; a stem shared by two sources gets a short hash of its path."""
    stems = paths.map(lambda p: Path(p).stem)
    clash = stems.duplicated(keep=False)
    return stems.where(~clash, stems + "_" + paths.map(lambda p: hashlib.sha1(p.encode()).hexdigest()[:8]))


def oversample(df: pd.DataFrame, final_dir: Path, write_dir: Path, cfg: BalanceConfig) -> pd.DataFrame:
    """Augmented rows topping every class up to the majority count (images written under write_dir)."""
    augment.check_config(cfg.augment)
    rng = np.random.default_rng(cfg.seed)
    counts = df["label"].value_counts()
    largest = int(counts.max())
    todo = int((largest - counts).sum())
    rows = []
    with tqdm(total=todo, desc="augment", unit="img", disable=None if todo else True) as bar:
        for label, group in df.groupby("label", sort=True):
            need = largest - len(group)
            if need <= 0:
                continue
            name = str(group["class_name"].iloc[0]) if "class_name" in group else str(label)
            group = group.reset_index(drop=True)
            stems = _stems(group["path"])
            picks = np.resize(rng.permutation(len(group)), need)
            copies: dict[int, int] = {}
            for i in picks:
                copies[i] = copies.get(i, 0) + 1
                rel = Path("augmented") / _safe(name) / f"{stems[i]}_aug{copies[i]}.png"
                size, digest, shape = augment.augment_file(
                    group.at[i, "path"], write_dir / rel, rng, cfg.augment
                )
                row = group.loc[i].to_dict()
                row.update(path=(final_dir / rel).as_posix(), bytes=size, sha256=digest)
                row.update(source_path=group.at[i, "path"], augmented=True)
                row.update(height=shape[0], width=shape[1], channels=shape[2])  # dtype kept: same depth
                if "warning" in row:
                    row["warning"] = ""  # a fresh PNG: the source's trailing bytes / EXIF are not in it
                rows.append(row)
                bar.update()
    added = pd.DataFrame(rows, columns=list(df.columns))
    return added.astype({c: df[c].dtype for c in df.columns if c in added})


def balance(df: pd.DataFrame, cfg: BalanceConfig, final_dir: Path, write_dir: Path) -> pd.DataFrame:
    """The balanced train rows for cfg.strategy (sorted by path)."""
    df = df.assign(source_path=df["path"], augmented=False)
    if cfg.strategy == "undersample":
        df = undersample(df, cfg.seed)
    elif cfg.strategy == "oversample":
        df = pd.concat([df, oversample(df, final_dir, write_dir, cfg)], ignore_index=True)
    return df.sort_values("path", kind="mergesort").reset_index(drop=True)


def _by_name(values: dict[str, float | int], names: dict[str, str]) -> dict[str, float | int]:
    """Re-key {label index: value} by class name for the report."""
    return {names.get(k, k): v for k, v in values.items()}


def run(cfg: Config, inputs: dict[str, Path], outputs: dict[str, Path]) -> dict:
    """Balance inputs["train"] into outputs["balanced"] (built in a .partial sibling, then renamed)."""
    df = manifest.read(inputs["train"], required=REQUIRED)
    if df.empty or df["label"].isna().any():
        raise DataError(f"{inputs['train']} is empty or has rows without a label; re-run the split stage")
    if df["label"].nunique() < 2 and cfg.balance.strategy != "none":
        raise DataError(f"{inputs['train']} holds a single class; balancing needs at least two")
    final_dir = Path(outputs["balanced"])
    write_dir = final_dir.with_name(final_dir.name + ".partial")
    shutil.rmtree(write_dir, ignore_errors=True)
    try:
        (write_dir / "augmented").mkdir(parents=True)
        result = balance(df, cfg.balance, final_dir, write_dir)
        names = manifest.label_map(df) if "class_name" in df else {}
        weights = paper_weights(df["label"]) if cfg.balance.strategy == "class_weight" else None
        weights = weights or {str(int(c)): 1.0 for c in sorted(df["label"].unique())}
        record = {
            "strategy": cfg.balance.strategy,
            "weights": weights,
            "sklearn_balanced": sklearn_weights(df["label"]),
            "class_names": names,
            "counts": {str(int(c)): int(n) for c, n in result["label"].value_counts().sort_index().items()},
        }
        manifest.write(result, write_dir / "train.csv")
        manifest.write_json(record, write_dir / "class_weights.json")
        shutil.rmtree(final_dir, ignore_errors=True)
        write_dir.replace(final_dir)
    finally:
        shutil.rmtree(write_dir, ignore_errors=True)
    before = {str(int(c)): int(n) for c, n in df["label"].value_counts().sort_index().items()}
    report = {
        "strategy": cfg.balance.strategy,
        "counts_before": _by_name(before, names),
        "counts_after": _by_name(record["counts"], names),
        "weights": _by_name(weights, names),
        "n_rows": {"before": len(df), "after": len(result)},
        "n_augmented": int(result["augmented"].sum()),
    }
    manifest.write_json(report, outputs["report"])
    log.info("balance (%s): %s -> %s", cfg.balance.strategy, report["counts_before"], report["counts_after"])
    return {"counts_after": report["counts_after"], "n_augmented": report["n_augmented"]}
