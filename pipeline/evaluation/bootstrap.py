"""95 % confidence intervals by cluster (patient) bootstrap.

Images of one patient are correlated, so resampling images would give CIs that are too narrow.
Each round draws as many patient ids as there are, with replacement, takes ALL images of every
drawn patient, and recomputes the metrics with the operating threshold held fixed (it was chosen
on validation). The CI is the 2.5th-97.5th percentile of the rounds where the metric is defined.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pandas as pd
from tqdm import tqdm

log = logging.getLogger(__name__)
MetricFn = Callable[[np.ndarray], dict[str, float | None]]


def patient_members(groups: np.ndarray) -> list[np.ndarray]:
    """Row indices of each cluster (in order of first appearance)."""
    codes, uniques = pd.factorize(pd.Series(groups).astype("string").fillna("<missing>"))
    order = np.argsort(codes, kind="stable")
    return np.split(order, np.cumsum(np.bincount(codes, minlength=len(uniques)))[:-1])


def cluster_bootstrap_ci(
    metric_fn: MetricFn,
    groups: np.ndarray,
    rounds: int,
    seed: int,
    level: float = 0.95,
    desc: str = "bootstrap",
) -> dict[str, list[float] | None]:
    """{metric: [lo, hi]} from `rounds` patient-resampled evaluations of metric_fn(row indices).

    A metric undefined in every round (e.g. ROC AUC with one class) gets None. rounds=0 -> {}.
    """
    if rounds <= 0:
        return {}
    members = patient_members(np.asarray(groups))
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {}
    for _ in tqdm(range(rounds), desc=desc, leave=False, mininterval=1.0, disable=None):
        picked = rng.integers(0, len(members), size=len(members))
        rows = np.concatenate([members[g] for g in picked])
        for key, value in metric_fn(rows).items():
            draws.setdefault(key, []).append(np.nan if value is None else float(value))
    tail = (1.0 - level) / 2.0 * 100.0
    ci: dict[str, list[float] | None] = {}
    for key, values in draws.items():
        arr = np.asarray(values)
        arr = arr[np.isfinite(arr)]
        ci[key] = (
            None
            if arr.size == 0
            else [float(np.percentile(arr, tail)), float(np.percentile(arr, 100 - tail))]
        )
    log.debug("bootstrap: %d rounds over %d patients", rounds, len(members))
    return ci
