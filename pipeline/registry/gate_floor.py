"""The gate floor (params gate.min): absolute minimums a model must pass to hold any alias.

The champion comparison (pipeline.registry.gate) is relative: without a champion anything would
win, so a degenerate model (ROC AUC 0.5, sensitivity 0) could become champion. The floor applies
with or without a champion; a model below it is still registered (its run and version are the
record of what was tried) but gets neither `champion` nor `challenger`.
"""

from __future__ import annotations

import math
from dataclasses import replace

from pipeline.config.floors import CHANCE, chance_level
from pipeline.registry.gate import Decision


def resolved(floors: dict, n_classes: int) -> dict[str, float]:
    """gate.min with "chance" replaced by the metric's chance level for this class count."""
    return {m: chance_level(m, n_classes) if f == CHANCE else float(f) for m, f in floors.items()}


def failures(metrics: dict, floors: dict, n_classes: int) -> list[str]:
    """One text per metric that is not strictly above its floor (missing or undefined fails)."""
    out = []
    for metric, floor in resolved(floors, n_classes).items():
        value = metrics.get(metric)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            out.append(f"{metric} is not measured (floor > {floor:.4g})")
        elif not value > floor:
            out.append(f"{metric} {value:.4f} is not above {floor:.4g}")
    return out


def apply(decision: Decision, below: list[str]) -> Decision:
    """The decision with the floor verdict: below the floor, no promotion and no alias."""
    if not below:
        return decision
    reason = f"below the gate floor ({'; '.join(below)}): registered without an alias"
    return replace(decision, promote=False, reason=reason, below_floor=tuple(below))
