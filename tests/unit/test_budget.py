"""train.budget_images (pipeline.training.budget): the same optimizer steps whatever n_train and batch
size, a cosine schedule laid out in those steps, refusals before training, the record in
train_summary.json, the version tags and lineage.json."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from pipeline import config
from pipeline.config import TrainConfig
from pipeline.core.errors import ConfigError
from pipeline.core.provenance import lineage_document
from pipeline.registry.gate import budget_tags
from pipeline.training import budget as budgets
from pipeline.training.checkpoints import CheckpointDir
from pipeline.training.data import ArrayBatches
from pipeline.training.fit import fit
from pipeline.training.optim import make_optimizer
from pipeline.training.runtime import configure


def _cfg(**train) -> TrainConfig:
    base = {"epochs": None, "budget_images": 160, "batch_size": 8, "early_stopping_patience": 100}
    return config.from_dict({"train": {**base, **train}}).train


@pytest.mark.parametrize("n_train", [17, 40, 64, 159, 160])
@pytest.mark.parametrize("batch_size", [1, 8, 32])
def test_the_plan_has_the_same_steps_for_any_n_train(n_train, batch_size):
    plan = budgets.plan(_cfg(batch_size=batch_size), n_train)
    assert plan.steps == math.ceil(160 / batch_size)
    assert (plan.epochs - 1) * plan.steps_per_epoch + plan.last_epoch_steps == plan.steps
    assert 1 <= plan.last_epoch_steps <= plan.steps_per_epoch
    assert plan.record()["epochs_equivalent"] == pytest.approx(plan.steps * batch_size / n_train, abs=1e-3)


def _tiny_model() -> keras.Model:
    inputs = keras.Input((4, 4, 1))
    x = keras.layers.Flatten()(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))


@pytest.fixture
def fresh_keras():
    """Layer names restart afterwards: test_model_digest compares names of a first and a new session."""
    yield
    keras.backend.clear_session()


class _StepCount(keras.callbacks.Callback):
    """Optimizer steps run (the model's iterations come back with the best epoch's weights)."""

    n = 0

    def on_train_batch_end(self, batch, logs=None):
        self.n += 1


@pytest.mark.parametrize(("n_train", "batch_size"), [(64, 8), (30, 16)])
def test_fit_runs_exactly_the_budgets_steps(tmp_path, fresh_keras, n_train, batch_size):
    """160 images: 20 steps at batch 8 (2 1/2 epochs of 64 images), 10 at batch 16 (5 epochs of 30)."""
    cfg = _cfg(batch_size=batch_size, lr_schedule="cosine", warmup_images=32)
    rng = np.random.default_rng(0)
    images = rng.random((n_train, 4, 4, 1), dtype=np.float32)
    train = ArrayBatches(images, np.arange(n_train) % 2, 2, batch_size, shuffle=True)
    val = ArrayBatches(images[:8], np.arange(8) % 2, 2, batch_size)
    plan = budgets.plan(cfg, n_train)
    runtime = configure(cfg.seed)
    model = _tiny_model()
    ckpt = CheckpointDir(tmp_path / "ckpt")
    ckpt.prepare({"test": n_train})
    steps = _StepCount()
    timer = fit(model, train, val, budgets.resolve(cfg, plan), ckpt, runtime, (steps,), budget=plan)
    assert steps.n == math.ceil(160 / batch_size)
    assert timer.epochs == list(range(1, plan.epochs + 1))  # the short last epoch is validated too
    assert len(ckpt.read_history()) == plan.epochs


def _lr(optimizer, step: int) -> float:
    return float(keras.ops.convert_to_numpy(optimizer._learning_rate(step)))


def test_the_cosine_schedule_and_warm_up_run_in_steps():
    """64 images of warm-up = 8 steps, then a cosine to 0 at step 20, on 64 training images
    (2.5 epochs): the curve ignores where the epochs end."""
    cfg = _cfg(lr_schedule="cosine", warmup_images=64, learning_rate=2e-3)
    plan = budgets.plan(cfg, 64)
    opt = make_optimizer(budgets.resolve(cfg, plan), 2e-3, plan.epochs, plan.steps_per_epoch, plan)
    assert _lr(opt, 4) == pytest.approx(1e-3, rel=1e-4)
    assert _lr(opt, 8) == pytest.approx(2e-3, rel=1e-4)
    assert _lr(opt, 14) == pytest.approx(1e-3, rel=1e-3)  # half-way through the 12 decay steps
    assert _lr(opt, 20) == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize(
    ("train", "message"),
    [
        (
            {"budget_images": 5000},
            "params: train.budget_images is 5000 and train.epochs is 12; set train.epochs: null",
        ),
        (
            {"epochs": None, "budget_images": 8, "batch_size": 16},
            "params: train.budget_images (8) is below one batch",
        ),
        ({"epochs": None}, "params: train.epochs is null; set train.epochs or train.budget_images"),
        (
            {
                "epochs": None,
                "budget_images": 999,
                "model": "densenet201",
                "weights": "imagenet",
                "fine_tune_epochs": 2,
            },
            "params: train.budget_images covers one phase",
        ),
        (
            {"epochs": None, "budget_images": 999, "lr_schedule": "cosine", "warmup_epochs": 1},
            "params: with train.budget_images the warm-up is train.warmup_images",
        ),
        ({"warmup_images": 64}, "params: train.warmup_images is only used with train.budget_images"),
        (
            {"epochs": None, "budget_images": 999, "lr_schedule": "cosine", "warmup_images": 999},
            "params: train.warmup_images (999) must be below train.budget_images (999)",
        ),
    ],
)
def test_budget_combinations_fail_at_load_in_one_line(train, message):
    with pytest.raises(ConfigError) as err:
        config.from_dict({"train": train})
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_a_budget_below_one_pass_is_refused_before_training():
    with pytest.raises(
        ConfigError, match=r"^train.budget_images \(160\) does not cover one pass over the 3,484"
    ):
        budgets.plan(_cfg(), 3484)
    assert budgets.plan(_cfg(epochs=12, budget_images=None), 3484) is None


def test_the_plan_reaches_the_version_tags_and_lineage():
    record = budgets.plan(_cfg(), 64).record()
    tags = budget_tags({"budget": record})
    assert tags == {
        "train.budget_images": "160",
        "train.steps": "20",
        "train.epochs": "3",
        "train.last_epoch_steps": "4",
    }
    assert lineage_document({**tags, "train.resumed": "no"})["train"]["steps"] == "20"
    assert budget_tags({"budget": None}) == {}
