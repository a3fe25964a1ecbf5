"""train params added for issue #5's quality goals: optimizer, weight decay, cosine schedule with
warm-up, label smoothing, split augmentation (h/v flip, rotation, translation), small_resnet width."""

from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest
from helpers.train_inputs import outputs_in, tiny_cfg, write_train_inputs

from pipeline import config
from pipeline.config import TrainAugmentConfig, TrainConfig
from pipeline.core.errors import ConfigError
from pipeline.models import build_model
from pipeline.training.losses import make_loss
from pipeline.training.optim import make_optimizer


def _lr_at(optimizer, step: int) -> float:
    lr = optimizer._learning_rate
    return float(keras.ops.convert_to_numpy(lr(step))) if callable(lr) else float(lr)


def test_defaults_keep_adam_on_a_constant_rate():
    opt = make_optimizer(TrainConfig(), 1e-3, phase_epochs=12, steps_per_epoch=10)
    assert type(opt) is keras.optimizers.Adam
    assert _lr_at(opt, 0) == pytest.approx(1e-3) and _lr_at(opt, 119) == pytest.approx(1e-3)


def test_adamw_cosine_with_warmup_follows_the_curve():
    cfg = TrainConfig(optimizer="adamw", weight_decay=1e-4, lr_schedule="cosine", warmup_epochs=2)
    opt = make_optimizer(cfg, 2e-3, phase_epochs=10, steps_per_epoch=5)
    assert isinstance(opt, keras.optimizers.AdamW) and opt.weight_decay == pytest.approx(1e-4)
    assert _lr_at(opt, 0) == pytest.approx(0.0, abs=1e-9)
    assert _lr_at(opt, 5) == pytest.approx(1e-3, rel=1e-4)  # half-way through the warm-up
    assert _lr_at(opt, 10) == pytest.approx(2e-3, rel=1e-4)  # peak at the end of the warm-up
    assert _lr_at(opt, 30) == pytest.approx(1e-3, rel=1e-3)  # half-way through the cosine
    assert _lr_at(opt, 50) == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize(
    "train, match",
    [
        ({"optimizer": "sgd"}, "train.optimizer"),
        ({"lr_schedule": "step"}, "train.lr_schedule"),
        ({"weight_decay": "1e-4"}, "train.weight_decay"),
        ({"augment": {"vflip": "no"}}, "train.augment.vflip"),
        ({"width": 1.5}, "train.width"),
    ],
)
def test_new_keys_are_type_checked(train, match):
    with pytest.raises(ConfigError, match=match):
        config.from_dict({"train": train})


@pytest.mark.parametrize(
    "cfg, match",
    [
        (TrainConfig(weight_decay=1e-4), "only used by train.optimizer: adamw"),
        (TrainConfig(warmup_epochs=2), "only used by train.lr_schedule: cosine"),
        (TrainConfig(lr_schedule="cosine", warmup_epochs=12), "must be below the epochs"),
        (TrainConfig(label_smoothing=1.0), "label_smoothing"),
    ],
)
def test_options_that_cannot_work_together_are_one_line_config_errors(cfg, match):
    with pytest.raises(ConfigError, match=match) as err:
        make_optimizer(cfg, 1e-3, phase_epochs=cfg.epochs, steps_per_epoch=4)
    assert "\n" not in str(err.value)


def test_label_smoothing_softens_the_targets():
    y = np.array([[0.0, 1.0]], np.float32)
    confident = np.array([[1e-6, 1.0 - 1e-6]], np.float32)
    hard, smooth = make_loss("crossentropy")(y, confident), make_loss("crossentropy", 0.2)(y, confident)
    assert float(hard) < 1e-4 < float(smooth)  # a confident correct answer is penalised when smoothed
    assert float(make_loss("focal", 0.2)(y, confident)) > float(make_loss("focal")(y, confident))


def _layer_types(model: keras.Model) -> list[str]:
    return [type(layer).__name__ for layer in model.layers]


def test_radiograph_augmentation_flips_only_horizontally():
    aug = TrainAugmentConfig(flip=True, vflip=False, rot90=False, zoom=0.1, rotate_deg=10, translate=0.1)
    model = build_model(TrainConfig(augment=aug), (28, 28, 1), 2)
    kinds = _layer_types(model)
    assert model.get_layer(index=1).mode == "horizontal"
    assert {"RandomRotation", "RandomTranslation", "RandomAxisZoom"} <= set(
        kinds
    ) and "RandomRot90" not in kinds
    x = np.random.default_rng(0).integers(0, 256, (4, 28, 28, 1)).astype(np.float32)
    np.testing.assert_array_equal(model(x, training=False), model(x, training=False))
    assert not np.allclose(model(x, training=True), model(x, training=True))


def test_default_augmentation_is_unchanged():
    model = build_model(TrainConfig(), (28, 28, 3), 2)
    assert model.get_layer(index=1).mode == "horizontal_and_vertical"
    assert _layer_types(model)[1:4] == ["RandomFlip", "RandomRot90", "RandomAxisZoom"]


def test_bad_augmentation_value_is_a_config_error():
    with pytest.raises(ConfigError, match="train.augment.translate"):
        build_model(TrainConfig(augment=TrainAugmentConfig(translate=0.7)), (28, 28, 1), 2)


def test_small_resnet_width_scales_the_network():
    narrow = build_model(TrainConfig(model="small_resnet", width=8), (28, 28, 1), 2)
    wide = build_model(TrainConfig(model="small_resnet", width=16), (28, 28, 1), 2)
    assert narrow.get_layer("stem_conv").filters == 8 and wide.get_layer("stage3_block2_conv2").filters == 64
    assert wide.count_params() > 3 * narrow.count_params()
    with pytest.raises(ConfigError, match="train.width"):
        build_model(TrainConfig(model="small_resnet", width=2), (28, 28, 1), 2)


def test_one_epoch_fit_with_every_new_option(in_tmp):
    from pipeline.stages import train

    aug = {"flip": True, "vflip": False, "rot90": False, "rotate_deg": 10.0, "translate": 0.1}
    cfg = tiny_cfg(
        model="small_resnet",
        width=8,
        epochs=3,
        optimizer="adamw",
        weight_decay=1e-4,
        lr_schedule="cosine",
        warmup_epochs=1,
        label_smoothing=0.1,
        augment=aug,
    )
    outs = outputs_in(in_tmp)
    train.run(cfg, write_train_inputs(in_tmp), outs)
    hist = pd.read_csv(outs["history"])
    assert hist["epoch"].tolist() == [1, 2, 3] and np.isfinite(hist["loss"]).all()
    # 32 images / batch 8 = 4 steps an epoch: peak 1e-3 after the warm-up epoch, then the cosine to 0
    np.testing.assert_allclose(hist["learning_rate"], [1e-3, 5e-4, 0.0], atol=1e-7)
    summary = json.loads((outs["model"] / "train_summary.json").read_text())
    assert summary["params"]["train"]["optimizer"] == "adamw"


def test_the_train_stage_spends_an_image_budget_and_records_it(in_tmp):
    """80 images at batch 8 on 32 training images: 10 steps = 2 whole epochs + a half epoch, which
    is validated and logged; the plan is in train_summary.json. A budget below one pass is refused
    in one line before any model is built."""
    from pipeline.stages import train

    cfg = tiny_cfg(epochs=None, budget_images=80, lr_schedule="cosine", warmup_images=16)
    outs = outputs_in(in_tmp)
    inputs = write_train_inputs(in_tmp)
    train.run(cfg, inputs, outs)
    assert pd.read_csv(outs["history"])["epoch"].tolist() == [1, 2, 3]
    summary = json.loads((outs["model"] / "train_summary.json").read_text())
    assert summary["budget"] == {
        "budget_images": 80,
        "warmup_images": 16,
        "steps": 10,
        "warmup_steps": 2,
        "steps_per_epoch": 4,
        "epochs": 3,
        "last_epoch_steps": 2,
        "epochs_equivalent": 2.5,
    }
    assert summary["params"]["train"]["budget_images"] == 80 and summary["params"]["train"]["epochs"] is None
    with pytest.raises(ConfigError, match=r"^train.budget_images \(24\) does not cover one pass over the 32"):
        train.run(tiny_cfg(epochs=None, budget_images=24), inputs, outputs_in(in_tmp, "-short"))
    assert not (in_tmp / "models-short").exists()
