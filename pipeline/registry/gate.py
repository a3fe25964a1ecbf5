"""Champion gate: should a freshly registered challenger replace the champion?

Both metric dicts must come from the SAME frozen test manifest (the register stage re-scores the
champion when its recorded test manifest differs). Promote when there is no champion, or when
the gate metric STRICTLY improves (by more than float noise) and by at least gate.min_delta, and
no guard metric drops by more than gate.max_drop. A tie never promotes, whatever min_delta is: an
identical retrain must not take over as champion (the alias would move, and its history would
record a "promotion" that changed nothing). A missing or non-finite metric never promotes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from pipeline.config import GateConfig
from pipeline.core.errors import ConfigError

_EPS = 1e-12  # float noise: an improvement of exactly min_delta counts


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    deltas: dict[str, float] = field(default_factory=dict)  # challenger - champion per compared metric
    below_floor: tuple[str, ...] = ()  # gate.min failures (pipeline.registry.gate_floor): no alias at all
    new_data: dict | None = None  # the comparison on new test images (pipeline.registry.new_data)


def _value(metrics: dict, name: str) -> float:
    value = metrics.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)


def decide(challenger: dict, champion: dict | None, cfg: GateConfig) -> Decision:
    """Compare challenger with champion metrics under the gate config."""
    if cfg.metric not in challenger:
        known = ", ".join(sorted(k for k, v in challenger.items() if isinstance(v, int | float)))
        raise ConfigError(f"params: gate.metric '{cfg.metric}' is not in the metrics; choose one of: {known}")
    if champion is None:
        return Decision(True, "no champion yet")
    names = [cfg.metric, *[g for g in cfg.guard_metrics if g != cfg.metric]]
    deltas = {n: _value(challenger, n) - _value(champion, n) for n in names}
    gate_delta = deltas[cfg.metric]
    if math.isnan(gate_delta):
        return Decision(False, f"{cfg.metric} is missing or not finite for challenger or champion", deltas)
    if abs(gate_delta) <= _EPS:
        return Decision(
            False,
            f"{cfg.metric} ties the champion ({gate_delta:+.4f}): promotion needs a strict improvement",
            deltas,
        )
    if gate_delta + _EPS < cfg.min_delta:
        return Decision(
            False, f"{cfg.metric} changed by {gate_delta:+.4f}, needs at least {cfg.min_delta:+.4f}", deltas
        )
    for guard in names[1:]:
        delta = deltas[guard]
        if math.isnan(delta):
            return Decision(False, f"guard metric {guard} is missing or not finite", deltas)
        if -delta > cfg.max_drop + _EPS:
            return Decision(
                False, f"guard metric {guard} dropped by {-delta:.4f} > max_drop {cfg.max_drop:.4f}", deltas
            )
    return Decision(
        True, f"{cfg.metric} improved by {gate_delta:+.4f}; guard metrics within max_drop", deltas
    )


def resume_tag(train_summary: dict) -> str:
    """`train.resumed` tag: no | exact (same model as one run) | inexact (RNG state not restored)."""
    if not train_summary.get("resumed"):
        return "no"
    return "inexact" if train_summary.get("resume_exact") is False else "exact"


def budget_tags(train_summary: dict) -> dict[str, str]:
    """train.budget_images / train.steps / ... of a budgeted run (train_summary.json 'budget'), for
    the version's tags and lineage.json: the step plan `reproduce` must meet again. {} for epochs."""
    budget = train_summary.get("budget") or {}
    return {
        f"train.{k}": str(budget[k])
        for k in ("budget_images", "steps", "epochs", "last_epoch_steps")
        if k in budget
    }


def fresh_run_only(decision: Decision, train_summary: dict) -> Decision:
    """Never promote a model from an inexact resume: it is not what a fresh run would give."""
    if not decision.promote or resume_tag(train_summary) != "inexact":
        return decision
    return Decision(
        False,
        "the model comes from an inexact resume (tag train.resumed=inexact): promotion needs a fresh "
        "run (remove checkpoints/ and run dvc repro -f train)",
        decision.deltas,
        new_data=decision.new_data,
    )
