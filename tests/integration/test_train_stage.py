"""train stage end to end on tiny synthetic data: outputs, determinism, resume, class weights."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.train_inputs import outputs_in, tiny_cfg, write_train_inputs

from pipeline import config


def _weights(model_dir: Path) -> list[np.ndarray]:
    import keras

    return keras.saving.load_model(model_dir / "model.keras", safe_mode=True).get_weights()


def test_outputs_layout_and_history(in_tmp):
    from pipeline.stages import train

    outs = outputs_in(in_tmp)
    summary = train.run(tiny_cfg(), write_train_inputs(in_tmp), outs)
    assert sorted(p.name for p in outs["model"].iterdir()) == [
        "label_map.json",
        "model.keras",
        "train_summary.json",
    ]
    label_map = json.loads((outs["model"] / "label_map.json").read_text())
    assert label_map == {
        "classes": ["c0", "c1"],
        "positive": "c1",
        "format": "idc",
        "image_size": 24,
        "channels": 3,
        "window": None,
    }
    hist = pd.read_csv(outs["history"])
    assert list(hist.columns) == [
        "epoch", "loss", "val_loss", "accuracy", "val_accuracy", "val_auc", "val_balanced_accuracy", "learning_rate",
    ]  # fmt: skip
    assert hist["epoch"].tolist() == [1, 2] and hist.notna().all().all()
    full = json.loads((outs["model"] / "train_summary.json").read_text())
    assert full["monitor"] == "val_auc"  # train.monitor: auto on two classes
    assert full["best_epoch"] == int(hist.loc[hist["val_auc"].idxmax(), "epoch"])
    assert full["train_images_per_second"] > 0 and full["backend"] == "tensorflow"
    assert summary["epochs_run"] == 2
    # cleared after a finished run, but for the note DVC ignores (no "is empty" warning)
    assert [p.name for p in outs["checkpoints"].iterdir()] == ["README.txt"]


def test_two_runs_give_identical_weights_and_history(in_tmp, monkeypatch):
    import keras

    from pipeline.models import cnn
    from pipeline.stages import train

    class DrawsFromGlobalRandom(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            random.random()  # as any other code in the process may

    def features_after_a_draw(x):
        random.random()  # another thread drawing while the model is built (Keras seeds layers from it)
        return features(x)

    features = cnn.baseline_cnn_features
    inputs = write_train_inputs(in_tmp)
    a, b = outputs_in(in_tmp, "_a"), outputs_in(in_tmp, "_b")
    train.run(tiny_cfg(), inputs, a)
    # other code drawing from Python's global `random` while the model is built or trained must
    # change neither the initial weights nor the batch order
    monkeypatch.setattr(cnn, "baseline_cnn_features", features_after_a_draw)
    train.train(tiny_cfg(), inputs, b, callbacks=(DrawsFromGlobalRandom(),))
    # history first: on a mismatch it shows the first epoch that diverged
    pd.testing.assert_frame_equal(pd.read_csv(a["history"]), pd.read_csv(b["history"]))
    for wa, wb in zip(_weights(a["model"]), _weights(b["model"]), strict=True):
        np.testing.assert_array_equal(wa, wb)


class _Kill(Exception):
    pass


def test_resume_after_kill_starts_at_next_epoch(in_tmp):
    import keras

    from pipeline.stages import train

    class KillAfterFirstEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                raise _Kill("simulated kill")

    inputs, outs = write_train_inputs(in_tmp), outputs_in(in_tmp)
    cfg = tiny_cfg(epochs=3)
    with pytest.raises(_Kill):
        train.train(cfg, inputs, outs, callbacks=(KillAfterFirstEpoch(),))
    assert not outs["model"].exists()
    assert (outs["checkpoints"] / "backup_train" / "latest.weights.h5").is_file()
    train.run(cfg, inputs, outs)
    summary = json.loads((outs["model"] / "train_summary.json").read_text())
    assert summary["resumed"] is True
    assert summary["epochs_this_run"] == [2, 3]  # epoch 1 was not trained again
    assert pd.read_csv(outs["history"])["epoch"].tolist() == [1, 2, 3]


def test_changed_params_discard_checkpoints(in_tmp):
    import keras

    from pipeline.stages import train

    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise _Kill("simulated kill")

    inputs, outs = write_train_inputs(in_tmp), outputs_in(in_tmp)
    with pytest.raises(_Kill):
        train.train(tiny_cfg(), inputs, outs, callbacks=(Kill(),))
    train.run(tiny_cfg(learning_rate=0.01), inputs, outs)
    summary = json.loads((outs["model"] / "train_summary.json").read_text())
    assert summary["resumed"] is False and summary["epochs_this_run"] == [1, 2]


def test_class_weights_change_the_loss(in_tmp):
    from pipeline.stages import train

    plain = write_train_inputs(in_tmp / "plain")
    (in_tmp / "weighted").mkdir()
    weighted = write_train_inputs(in_tmp / "weighted", weights={"0": 0.2, "1": 3.0})
    cfg = tiny_cfg(epochs=1)
    a, b = outputs_in(in_tmp, "_a"), outputs_in(in_tmp, "_b")
    train.run(cfg, {k: in_tmp / "plain" / v for k, v in plain.items()}, a)
    train.run(cfg, {k: in_tmp / "weighted" / v for k, v in weighted.items()}, b)
    loss_a, loss_b = pd.read_csv(a["history"])["loss"][0], pd.read_csv(b["history"])["loss"][0]
    assert abs(loss_a - loss_b) > 1e-3
    assert json.loads((b["model"] / "train_summary.json").read_text())["class_weight"] == {"0": 0.2, "1": 3.0}


def test_focal_loss_three_classes(in_tmp):
    from pipeline.stages import train

    outs = outputs_in(in_tmp)
    train.run(tiny_cfg(loss="focal", epochs=1), write_train_inputs(in_tmp, n_train=30, n_classes=3), outs)
    import keras

    model = keras.saving.load_model(outs["model"] / "model.keras", safe_mode=True)
    assert model.output_shape == (None, 3)
    hist = pd.read_csv(outs["history"])
    assert np.isfinite(hist["loss"]).all()


def test_bad_label_is_one_line_data_error(in_tmp):
    from pipeline.core.errors import DataError
    from pipeline.stages import train

    inputs = write_train_inputs(in_tmp)
    df = pd.read_csv(in_tmp / "data/preprocessed/train.csv")
    df.loc[0, "label"] = 7
    df.to_csv(in_tmp / "data/preprocessed/train.csv", index=False)
    with pytest.raises(DataError, match="labels outside 0..1"):
        train.run(tiny_cfg(), inputs, outputs_in(in_tmp))


def test_two_phase_fine_tuning_of_a_pretrained_backbone(in_tmp):
    import keras

    from pipeline.models import build_model
    from pipeline.models.applications import BACKBONE
    from pipeline.stages import train

    class CountTrainable(keras.callbacks.Callback):
        counts: list[int] = []

        def on_train_begin(self, logs=None):
            self.counts.append(len(self.model.trainable_weights))

    path = in_tmp / "backbone.weights.h5"
    donor = build_model(config.TrainConfig(model="mobilenetv2"), (32, 32, 3), 2)
    donor.get_layer(BACKBONE).save_weights(path)
    cfg = tiny_cfg(32, model="mobilenetv2", weights=str(path), epochs=1, fine_tune_epochs=1)
    outs = outputs_in(in_tmp)
    train.train(cfg, write_train_inputs(in_tmp, image_size=32), outs, callbacks=(CountTrainable(),))
    hist = pd.read_csv(outs["history"])
    assert hist["epoch"].tolist() == [1, 2]
    np.testing.assert_allclose(hist["learning_rate"], [1e-3, 1e-5], rtol=1e-5)
    n_frozen, n_fine = CountTrainable.counts
    assert n_frozen == 2  # phase 1: only the softmax head (kernel, bias)
    n_backbone = len(donor.get_layer(BACKBONE).trainable_weights)
    assert 2 < n_fine < n_backbone  # phase 2: the head + the top of the backbone


def _kill_after(epoch_index: int):
    import keras

    class KillAfter(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == epoch_index:
                raise _Kill("simulated kill")

    return KillAfter()


def test_a_resumed_train_is_the_uninterrupted_run(in_tmp):
    """Kill after epoch 2 of 4 and resume: weights and history equal one uninterrupted run exactly
    (seed generators of dropout/augmentation, plateau/early-stopping counters restored)."""
    from pipeline.stages import train

    inputs = write_train_inputs(in_tmp)
    cfg = tiny_cfg(epochs=4, dropout=0.3, reduce_lr_patience=1, early_stopping_patience=2)
    a, b = outputs_in(in_tmp, "_a"), outputs_in(in_tmp, "_b")
    train.run(cfg, inputs, a)
    with pytest.raises(_Kill):
        train.train(cfg, inputs, b, callbacks=(_kill_after(1),))
    train.run(cfg, inputs, b)
    summary = json.loads((b["model"] / "train_summary.json").read_text())
    assert summary["resumed"] is True and summary["resume_exact"] is True
    assert summary["epochs_this_run"][0] == 3
    # history first: on a mismatch it shows the first epoch that diverged
    pd.testing.assert_frame_equal(pd.read_csv(a["history"]), pd.read_csv(b["history"]))
    for wa, wb in zip(_weights(a["model"]), _weights(b["model"]), strict=True):
        np.testing.assert_array_equal(wa, wb)


def test_a_resumed_budget_run_is_the_uninterrupted_run(in_tmp):
    """train.budget_images 80 on 32 images at batch 8: 10 steps = epochs 1-2 + half of epoch 3.
    Killed after epoch 2, the resume runs only the short third epoch, on the same cosine curve."""
    from pipeline.stages import train

    inputs = write_train_inputs(in_tmp)
    cfg = tiny_cfg(epochs=None, budget_images=80, lr_schedule="cosine", warmup_images=8, dropout=0.3)
    a, b = outputs_in(in_tmp, "_a"), outputs_in(in_tmp, "_b")
    train.run(cfg, inputs, a)
    with pytest.raises(_Kill):
        train.train(cfg, inputs, b, callbacks=(_kill_after(1),))
    train.run(cfg, inputs, b)
    summary = json.loads((b["model"] / "train_summary.json").read_text())
    assert summary["resume_exact"] is True and summary["epochs_this_run"] == [3]
    assert summary["budget"]["steps"] == 10 and summary["budget"]["last_epoch_steps"] == 2
    pd.testing.assert_frame_equal(pd.read_csv(a["history"]), pd.read_csv(b["history"]))
    for wa, wb in zip(_weights(a["model"]), _weights(b["model"]), strict=True):
        np.testing.assert_array_equal(wa, wb)


def test_a_resume_without_its_rng_state_is_marked_inexact(in_tmp):
    from pipeline.stages import train

    inputs, outs = write_train_inputs(in_tmp), outputs_in(in_tmp)
    cfg = tiny_cfg(epochs=2)
    with pytest.raises(_Kill):
        train.train(cfg, inputs, outs, callbacks=(_kill_after(0),))
    (outs["checkpoints"] / "backup_train" / "resume_state.json").unlink()  # e.g. an older backup
    train.run(cfg, inputs, outs)
    summary = json.loads((outs["model"] / "train_summary.json").read_text())
    assert summary["resumed"] is True and summary["resume_exact"] is False


def test_out_of_memory_is_one_line_and_leaves_no_model(in_tmp):
    import keras

    from pipeline.cli import commands as cli
    from pipeline.core.errors import ResourceError
    from pipeline.stages import train

    class DeviceOOM(keras.callbacks.Callback):  # what XLA raises when a step does not fit the GPU
        def on_train_batch_begin(self, batch, logs=None):
            raise RuntimeError(
                "RESOURCE_EXHAUSTED: Out of memory while trying to allocate 8589934592 bytes.\nBufferAssignment..."
            )

    inputs, outs = write_train_inputs(in_tmp), outputs_in(in_tmp)
    with pytest.raises(
        ResourceError, match="out of memory training baseline_cnn .* lower train.batch_size"
    ) as err:
        train.train(tiny_cfg(), inputs, outs, callbacks=(DeviceOOM(),))
    assert "\n" not in str(err.value) and "e.g. 4" in str(err.value)
    assert not outs["model"].exists() and not outs["history"].exists()
    assert isinstance(err.value, cli.MedpipeError)  # the CLI prints it as one line and removes new outputs
