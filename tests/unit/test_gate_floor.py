"""The registered model name (pipeline.config.naming), gate.min at load, and the floor verdict."""

from __future__ import annotations

import pytest

from pipeline import config
from pipeline.config import presets
from pipeline.core.errors import ConfigError
from pipeline.registry import gate, gate_floor


@pytest.mark.parametrize(
    ("data", "name"),
    [
        ({}, "medpipe-idc"),
        ({"format": "chest_xray", "classes": "binary"}, "medpipe-chest_xray-binary"),
        ({"format": "chest_xray", "classes": "three"}, "medpipe-chest_xray-three"),
        ({"format": "breakhis", "label": "tumor_type"}, "medpipe-breakhis-tumor_type"),
        ({"format": "breakhis"}, "medpipe-breakhis"),
        ({"format": "tb"}, "medpipe-tb"),
    ],
)
def test_name_derives_from_the_data_when_unset(data, name):
    assert config.from_dict({"data": data}).registry.model_name is None
    assert config.registered_name(config.from_dict({"data": data})) == name


def test_a_set_name_wins_and_every_preset_names_its_own_model():
    assert config.registered_name(config.from_dict({"registry": {"model_name": "x-1"}})) == "x-1"
    names = {}
    for preset in presets.available():
        doc = presets.load(preset)
        names[preset] = doc["registry"]["model_name"]
        assert config.registered_name(config.from_dict(doc)) == names[preset]
    assert len(set(names.values())) == len(names)
    assert names["kermany-3class"] == "medpipe-kermany-3class" and names["idc"] == "medpipe-idc"


@pytest.mark.parametrize("name", ["a/b", "a:b", "50%", "m@champion", "a..b", "", " m", "-m", "x" * 256])
def test_a_model_name_mlflow_refuses_is_one_line_at_load(name):
    with pytest.raises(ConfigError) as err:
        config.from_dict({"registry": {"model_name": name}})
    message = str(err.value)
    assert "registry.model_name" in message and "\n" not in message


@pytest.mark.parametrize(
    ("floors", "words"),
    [
        ({"auc": 0.6}, "'auc', which reports/metrics.json does not carry"),
        ({"ece": 0.1}, "'ece'"),
        ({"n_test": 1}, "'n_test'"),
        ({"f1": "chance"}, "'gate.min.f1' is 'chance'"),
        ({"f1": 1.5}, "'gate.min.f1' is 1.5; accepted range"),
        ({"f1": "high"}, "'gate.min.f1'"),
    ],
)
def test_a_floor_that_cannot_apply_is_one_line_at_load(floors, words):
    with pytest.raises(ConfigError) as err:
        config.from_dict({"gate": {"min": floors}})
    assert words in str(err.value) and "\n" not in str(err.value)


def test_default_floors_and_chance():
    floors = config.from_dict({}).gate.min
    assert floors == {"roc_auc": 0.6, "sensitivity": 0.0, "balanced_accuracy": "chance"}
    assert gate_floor.resolved(floors, 3)["balanced_accuracy"] == pytest.approx(1 / 3)
    assert gate_floor.resolved({"patient_roc_auc": "chance"}, 3) == {"patient_roc_auc": 0.5}
    assert config.from_dict({"gate": {"min": {}}}).gate.min == {}


def test_a_degenerate_model_is_below_the_floor_on_every_count():
    floors = config.from_dict({}).gate.min
    degenerate = {"roc_auc": 0.5, "sensitivity": 0.0, "balanced_accuracy": 0.5}
    below = gate_floor.failures(degenerate, floors, 2)
    assert below == [
        "roc_auc 0.5000 is not above 0.6",
        "sensitivity 0.0000 is not above 0",
        "balanced_accuracy 0.5000 is not above 0.5",
    ]
    good = {"roc_auc": 0.61, "sensitivity": 0.01, "balanced_accuracy": 0.51}
    assert gate_floor.failures(good, floors, 2) == []
    assert gate_floor.failures({**good, "balanced_accuracy": 0.4}, floors, 3) == []  # chance is 1/3
    assert gate_floor.failures(
        {"roc_auc": None, "sensitivity": float("nan")}, {"roc_auc": 0.6, "sensitivity": 0}, 2
    ) == [
        "roc_auc is not measured (floor > 0.6)",
        "sensitivity is not measured (floor > 0)",
    ]


def test_below_the_floor_never_promotes_even_without_a_champion():
    cfg = config.from_dict({}).gate
    degenerate = {"roc_auc": 0.5, "sensitivity": 0.0, "balanced_accuracy": 0.5}
    first = gate.decide(degenerate, None, cfg)
    assert first.promote and first.reason == "no champion yet"  # the relative gate alone would promote
    verdict = gate_floor.apply(first, gate_floor.failures(degenerate, cfg.min, 2))
    assert not verdict.promote and len(verdict.below_floor) == 3
    assert verdict.reason.startswith("below the gate floor (roc_auc 0.5000 is not above 0.6;")
    assert verdict.reason.endswith("registered without an alias")
    passing = gate.decide({"roc_auc": 0.9, "sensitivity": 0.8, "balanced_accuracy": 0.8}, None, cfg)
    assert gate_floor.apply(passing, []) is passing


def test_floor_metrics_are_the_headline_keys_where_higher_is_better():
    """config.floors cannot import the evaluation layer, so it lists the keys itself: keep them in step."""
    from pipeline.config.floors import FLOOR_METRICS
    from pipeline.evaluation.metrics import HEADLINE

    higher_is_better = [m for m in HEADLINE if m != "ece"]
    assert sorted(FLOOR_METRICS) == sorted([*higher_is_better, *(f"patient_{m}" for m in higher_is_better)])
