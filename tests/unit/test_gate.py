"""Champion gate: pure decision rules."""

from __future__ import annotations

import math

import pytest

from pipeline.config import GateConfig
from pipeline.core.errors import ConfigError
from pipeline.registry.gate import decide

GATE = GateConfig(metric="roc_auc", min_delta=0.01, guard_metrics=("sensitivity",), max_drop=0.05)


def test_no_champion_promotes() -> None:
    d = decide({"roc_auc": 0.5, "sensitivity": 0.1}, None, GATE)
    assert d.promote and "no champion" in d.reason


@pytest.mark.parametrize(
    ("challenger", "promote", "word"),
    [
        ({"roc_auc": 0.82, "sensitivity": 0.80}, True, "improved"),  # +0.02 >= min_delta
        ({"roc_auc": 0.81, "sensitivity": 0.80}, True, "improved"),  # exactly min_delta counts
        ({"roc_auc": 0.805, "sensitivity": 0.80}, False, "needs at least"),
        ({"roc_auc": 0.70, "sensitivity": 0.90}, False, "needs at least"),
        ({"roc_auc": 0.90, "sensitivity": 0.74}, False, "sensitivity dropped"),  # drop 0.06 > 0.05
        ({"roc_auc": 0.90, "sensitivity": 0.75}, True, "improved"),  # drop 0.05 == max_drop allowed
        ({"roc_auc": math.nan, "sensitivity": 0.8}, False, "not finite"),
        ({"roc_auc": 0.90}, False, "guard metric sensitivity is missing"),
    ],
)
def test_rules(challenger: dict, promote: bool, word: str) -> None:
    d = decide(challenger, {"roc_auc": 0.80, "sensitivity": 0.80}, GATE)
    assert d.promote is promote and word in d.reason
    assert set(d.deltas) == {"roc_auc", "sensitivity"}


def test_deltas_are_challenger_minus_champion() -> None:
    d = decide({"roc_auc": 0.9, "sensitivity": 0.7}, {"roc_auc": 0.8, "sensitivity": 0.72}, GATE)
    assert d.deltas["roc_auc"] == pytest.approx(0.1) and d.deltas["sensitivity"] == pytest.approx(-0.02)


def test_unknown_gate_metric() -> None:
    with pytest.raises(ConfigError, match="gate.metric 'auc'"):
        decide({"roc_auc": 0.9}, None, GateConfig(metric="auc"))


@pytest.mark.parametrize(
    ("summary", "tag", "promote"),
    [
        ({}, "no", True),
        ({"resumed": False, "resume_exact": None}, "no", True),
        ({"resumed": True, "resume_exact": True}, "exact", True),
        ({"resumed": True, "resume_exact": False}, "inexact", False),
    ],
)
def test_an_inexact_resume_is_never_promoted(summary, tag, promote):
    from pipeline.registry.gate import fresh_run_only, resume_tag

    decision = fresh_run_only(decide({"roc_auc": 0.9, "sensitivity": 0.9}, None, GATE), summary)
    assert resume_tag(summary) == tag
    assert decision.promote is promote
    if not promote:
        assert decision.reason.startswith(
            "the model comes from an inexact resume (tag train.resumed=inexact)"
        )
