"""The operating threshold: chosen on VALIDATION predictions only, then applied to test.

Rules (params evaluate.threshold), binary tasks, on P(positive); an image is called positive
when P(positive) >= threshold:
- youden: the ROC point of maximal Youden J = sensitivity + specificity - 1.
- sensitivity: the highest threshold whose validation sensitivity reaches
  evaluate.target_sensitivity (the most specific operating point that meets the target).
- fixed: evaluate.fixed_threshold.
Multi-class tasks (no positive class) use argmax and have no threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_curve

from pipeline.config import EvaluateConfig
from pipeline.core.errors import ConfigError, DataError


@dataclass(frozen=True)
class ThresholdChoice:
    """A threshold (None = argmax) and a one-line description of how it was chosen."""

    value: float | None
    rule: str


def check_config(cfg: EvaluateConfig) -> None:
    """Fail fast on out-of-range evaluate params."""
    if not 0.0 < cfg.target_sensitivity <= 1.0:
        raise ConfigError(
            f"params: evaluate.target_sensitivity is {cfg.target_sensitivity}; use a value in (0, 1]"
        )
    if not 0.0 <= cfg.fixed_threshold <= 1.0:
        raise ConfigError(f"params: evaluate.fixed_threshold is {cfg.fixed_threshold}; use a value in [0, 1]")
    if cfg.bootstrap < 0:
        raise ConfigError(f"params: evaluate.bootstrap is {cfg.bootstrap}; use 0 (no CIs) or more rounds")


def choose_threshold(
    val_is_positive: np.ndarray, val_p_positive: np.ndarray, cfg: EvaluateConfig, what: str = "val images"
) -> ThresholdChoice:
    """Pick the binary operating threshold from validation labels (bool) and P(positive)."""
    if cfg.threshold == "fixed":
        return ThresholdChoice(float(cfg.fixed_threshold), f"fixed threshold {cfg.fixed_threshold:g}")
    y = np.asarray(val_is_positive, dtype=bool)
    p = np.asarray(val_p_positive, dtype=np.float64)
    if y.all() or not y.any():
        only = "positive" if y.any() else "negative"
        raise DataError(
            f"threshold rule '{cfg.threshold}' needs both classes in the {what} but all {len(y)} are "
            f"{only}; enlarge split.val_fraction or set evaluate.threshold: fixed"
        )
    fpr, tpr, thresholds = roc_curve(y, p, drop_intermediate=False)
    thresholds = np.minimum(thresholds, 1.0)  # roc_curve's first threshold is +inf (nothing positive)
    if cfg.threshold == "youden":
        best = int(np.argmax(tpr - fpr))
        value = float(thresholds[best])
        rule = (
            f"Youden J on {what} (J={tpr[best] - fpr[best]:.3f}: "
            f"val sensitivity {tpr[best]:.3f}, specificity {1 - fpr[best]:.3f})"
        )
        return ThresholdChoice(value, rule)
    reached = np.flatnonzero(tpr >= cfg.target_sensitivity)  # thresholds decrease along the curve
    best = int(reached[0])
    rule = (
        f"highest threshold reaching sensitivity >= {cfg.target_sensitivity:g} on {what} "
        f"(val sensitivity {tpr[best]:.3f}, specificity {1 - fpr[best]:.3f})"
    )
    return ThresholdChoice(float(thresholds[best]), rule)


def argmax_choice() -> ThresholdChoice:
    return ThresholdChoice(None, "multi-class: predicted class = argmax of the softmax (no threshold)")
