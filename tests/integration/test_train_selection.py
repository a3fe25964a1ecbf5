"""train.monitor (selection on val AUC / balanced accuracy, never in the warm-up) and
train.ensemble (N seeds averaged in one model.keras), on the tiny synthetic project."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from helpers.train_inputs import outputs_in, tiny_cfg, write_train_inputs

from pipeline.core.errors import ConfigError


def test_selection_skips_the_warm_up_and_follows_the_monitor(in_tmp):
    from pipeline.stages import train

    outs = outputs_in(in_tmp)
    cfg = tiny_cfg(epochs=3, lr_schedule="cosine", warmup_epochs=2, monitor="val_loss")
    train.run(cfg, write_train_inputs(in_tmp), outs)
    summary = json.loads((outs["model"] / "train_summary.json").read_text())
    hist = pd.read_csv(outs["history"])
    assert summary["monitor"] == "val_loss"
    assert summary["best_epoch"] == 3  # epochs 1-2 are warm-up: never chosen, whatever their val_loss
    assert hist["val_balanced_accuracy"].between(0, 1).all()


def test_ensemble_is_one_model_averaging_its_members(in_tmp):
    import keras

    from pipeline.models import ensemble
    from pipeline.stages import train

    outs = outputs_in(in_tmp)
    project = write_train_inputs(in_tmp, n_classes=3)
    train.run(tiny_cfg(epochs=1, ensemble=2), project, outs)
    summary = json.loads((outs["model"] / "train_summary.json").read_text())
    assert summary["monitor"] == "val_balanced_accuracy"  # auto on three classes
    assert [m["seed"] for m in summary["ensemble"]] == [1234, 1235]
    assert sorted(p.name for p in outs["model"].iterdir()) == [
        "label_map.json",
        "model.keras",
        "train_summary.json",
    ]
    model = keras.saving.load_model(outs["model"] / "model.keras", safe_mode=True)
    members = ensemble.members(model)
    assert len(members) == 2
    x = np.random.default_rng(0).integers(0, 255, (4, 24, 24, 3)).astype("float32")
    mean = np.mean([m.predict_on_batch(x) for m in members], axis=0)
    np.testing.assert_allclose(model.predict_on_batch(x), mean, rtol=1e-5, atol=1e-6)
    assert not np.allclose(members[0].predict_on_batch(x), members[1].predict_on_batch(x))  # two seeds


def test_fine_tune_epochs_without_a_frozen_backbone_is_one_line_error():
    from pipeline.config import TrainConfig
    from pipeline.models import build_model
    from pipeline.training.fit import plan_phases

    cfg = TrainConfig(model="small_resnet", width=4, weights="none", fine_tune_epochs=3)
    with pytest.raises(ConfigError, match="fine_tune_epochs is 3 but nothing is frozen"):
        plan_phases(cfg, build_model(cfg, (24, 24, 1), 2))


def test_val_metrics_binary_and_multiclass():
    from pipeline.config import TrainConfig
    from pipeline.training.selection import monitor_of, val_metrics

    y = np.array([0, 0, 1, 1])
    p = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.55, 0.45]])
    m = val_metrics(y, p)
    assert m["val_auc"] == pytest.approx(1.0) and m["val_balanced_accuracy"] == pytest.approx(0.75)
    y3 = np.array([0, 1, 2, 2])
    p3 = np.eye(3)[[0, 1, 2, 1]]
    assert val_metrics(y3, p3)["val_balanced_accuracy"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert monitor_of(TrainConfig(), 2) == ("val_auc", "max")
    assert monitor_of(TrainConfig(), 3) == ("val_balanced_accuracy", "max")
    assert monitor_of(TrainConfig(monitor="val_loss"), 3) == ("val_loss", "min")
