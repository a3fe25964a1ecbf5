"""Patient-grouped, stratified carving of splits with scikit-learn (used by the split stage).

Groups: patients linked by a shared image sha256 are merged (connected components), so a
duplicate image across patients always ends up in one split; rows without a patient_id are
their own group. carve() cuts a pool into n <= 20 StratifiedGroupKFold folds and takes the m
folds (m/n closest to the wanted fraction) whose union best matches the target image count
while leaving every class on both sides.
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.model_selection import StratifiedGroupKFold

from pipeline.core.errors import DataError

MAX_FOLDS = 20
MAX_COMBINATIONS = 5000  # fold subsets scored per carve


def patient_groups(df: pd.DataFrame) -> np.ndarray:
    """Group id per row: connected components of patients linked by a shared image sha256."""
    patients, _ = pd.factorize(patient_keys(df))
    hashes, _ = pd.factorize(df["sha256"].fillna("row:" + df["path"]))
    n_p, n_nodes = patients.max() + 1, patients.max() + 1 + hashes.max() + 1
    edges = coo_matrix((np.ones(len(df)), (patients, n_p + hashes)), shape=(n_nodes, n_nodes))
    _, component = connected_components(edges, directed=False)
    return component[patients]


def patient_keys(df: pd.DataFrame) -> pd.Series:
    """patient_id, or a per-row key where it is missing."""
    return df["patient_id"].fillna("row:" + df["path"])


def fold_plan(fraction: float, max_folds: int) -> tuple[int, int]:
    """(m, n): take m of n folds, m/n closest to fraction (fewest folds on ties)."""
    plans = [
        (abs(m / n - fraction), n, m)
        for n in range(2, max_folds + 1)
        for m in range(1, n)
        if math.comb(n, m) <= MAX_COMBINATIONS
    ]
    _, n, m = min(plans)
    return m, n


IMAGE_LEVEL_HINT = (
    ", or set split.allow_image_level: true to split by image (images of one patient may then be in "
    "train and test; docs/data.md, small cohorts)"
)


def too_few_groups(labels: np.ndarray, groups: np.ndarray, need: int, where: str) -> str | None:
    """Why `groups` cannot give `need` groups overall and per class (None: they can)."""
    if len(np.unique(groups)) < need:
        return (
            f"only {len(np.unique(groups))} patient group(s) in {where}; need at least {need} to split "
            "without sharing a patient; add patients (each split needs its own)"
        )
    for label, count in pd.Series(groups).groupby(labels).nunique().items():
        if count < need:
            return (
                f"class {label} has only {count} patient(s) in {where}; need at least {need} to stratify "
                "train/val/test by patient; add patients of that class or merge classes"
            )
    return None


def require_groups_per_class(
    labels: np.ndarray, groups: np.ndarray, need: int, where: str, hint: str = IMAGE_LEVEL_HINT
) -> None:
    """DataError unless there are `need` patient groups overall and per class; `hint` ends the line."""
    problem = too_few_groups(labels, groups, need, where)
    if problem:
        raise DataError(problem + hint)


def image_groups(df: pd.DataFrame) -> np.ndarray:
    """Group id per row for an image-level split: one group per image sha256 (a row without one
    is its own group), so the same image never lands in two splits."""
    return pd.factorize(df["sha256"].fillna("row:" + df["path"]))[0]


def carve(labels: np.ndarray, groups: np.ndarray, target: int, seed: int, name: str) -> np.ndarray:
    """Boolean mask of about `target` rows, whole groups only, stratified by label."""
    require_groups_per_class(labels, groups, 2, f"the pool {name} is carved from")
    n_max = min(MAX_FOLDS, len(np.unique(groups)), int(np.bincount(pd.factorize(labels)[0]).max()))
    m, n = fold_plan(target / len(labels), max(n_max, 2))
    splitter = StratifiedGroupKFold(n_splits=n, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "least populated class" is checked above
        folds = [test for _, test in splitter.split(np.zeros(len(labels)), labels, groups)]
    codes, classes = pd.factorize(labels, sort=True)
    counts = np.stack([np.bincount(codes[f], minlength=len(classes)) for f in folds])
    total = counts.sum(axis=0)

    def cost(combo: tuple[int, ...]) -> tuple[int, int]:
        taken = counts[list(combo)].sum(axis=0)
        missing = int((taken == 0).sum() + (total - taken == 0).sum())
        return missing, abs(int(taken.sum()) - target)

    best = min(itertools.combinations(range(n), m), key=cost)
    mask = np.zeros(len(labels), bool)
    mask[np.concatenate([folds[i] for i in best])] = True
    return mask


def split_pool(labels: np.ndarray, groups: np.ndarray, test_n: int, val_n: int, seed: int) -> np.ndarray:
    """Split names per row: test carved first, then val from the rest."""
    out = np.full(len(labels), "train", dtype=object)
    rest = np.arange(len(labels))
    for name, target, offset in (("test", test_n, 0), ("val", val_n, 1)):
        if target > 0:
            taken = carve(labels[rest], groups[rest], target, seed + offset, name)
            out[rest[taken]] = name
            rest = rest[~taken]
    return out
