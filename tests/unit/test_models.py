"""build_model for every model name, backbone weight files, safe-mode reload, the rot90 layer."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from helpers.model_checks import assert_builds_and_predicts

from pipeline.config import TrainConfig
from pipeline.core.errors import ConfigError
from pipeline.models import build_model
from pipeline.models.applications import BACKBONE, set_backbone_trainable
from pipeline.models.layers import RandomRot90


def _batch(n=3, size=32, channels=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, channels)).astype(np.float32)


@pytest.mark.parametrize(
    "name",
    [
        "baseline_cnn",
        "small_resnet",
        "mobilenetv2",
        "efficientnetb0",
    ],
)
def test_build_every_model(name):  # densenet201: tests/integration/test_densenet201.py (~20 s to build)
    assert_builds_and_predicts(name)


def test_gray_input_and_three_classes():
    model = build_model(TrainConfig(model="mobilenetv2"), (32, 32, 1), 3)
    assert model.predict_on_batch(_batch(channels=1)).shape == (3, 3)


@pytest.mark.parametrize("stride", [1, 2])
def test_small_resnet_stem_stride_halves_every_feature_map(stride):
    cfg = TrainConfig(model="small_resnet", width=4, stem_stride=stride)
    model = build_model(cfg, (32, 32, 1), 3)
    sides = {n: model.get_layer(n).output.shape[1] for n in ("stem_conv", "stage3_block2_out")}
    assert sides == {"stem_conv": 32 // stride, "stage3_block2_out": 8 // stride}
    assert model.predict_on_batch(_batch(channels=1)).shape == (3, 3)


@pytest.mark.parametrize("name", ["baseline_cnn", "small_resnet"])
def test_initial_weights_follow_the_seed_not_pythons_global_random(name):
    """Keras seeds unseeded initializers from Python's global `random`; another thread drawing
    from it while a model is built changed the initial weights (a CI run's determinism failure)."""
    import random

    def weights(seed: int, global_seed: int) -> list[np.ndarray]:
        random.seed(global_seed)
        random.random()  # as any other code in the process may
        return build_model(TrainConfig(model=name, width=4, seed=seed), (16, 16, 3), 2).get_weights()

    first, second, other = weights(7, global_seed=1), weights(7, global_seed=2), weights(8, global_seed=1)
    assert len(first) == len(second) > 4
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    kernels = [(a, b) for a, b in zip(first, other, strict=True) if a.ndim > 1]
    assert all(not np.array_equal(a, b) for a, b in kernels)  # the seed does set them


def test_augmentation_only_in_training():
    model = build_model(TrainConfig(model="baseline_cnn", dropout=0.0), (32, 32, 3), 2)
    x = _batch()
    np.testing.assert_array_equal(model(x, training=False), model(x, training=False))
    assert not np.allclose(model(x, training=True), model(x, training=True))


def test_backbone_weights_file_is_loaded(tmp_path):
    source = build_model(TrainConfig(model="mobilenetv2", seed=1), (32, 32, 3), 2)
    path = tmp_path / "backbone.weights.h5"
    source.get_layer(BACKBONE).save_weights(path)
    loaded = build_model(TrainConfig(model="mobilenetv2", weights=str(path), seed=2), (32, 32, 3), 2)
    fresh = build_model(TrainConfig(model="mobilenetv2", seed=2), (32, 32, 3), 2)
    src_w, got_w = source.get_layer(BACKBONE).get_weights(), loaded.get_layer(BACKBONE).get_weights()
    for a, b in zip(src_w, got_w, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not all(
        np.array_equal(a, b) for a, b in zip(src_w, fresh.get_layer(BACKBONE).get_weights(), strict=True)
    )
    assert loaded.get_layer(BACKBONE).trainable is False  # pretrained backbones start frozen
    set_backbone_trainable(loaded, "fine_tune")
    trainable = [layer.trainable for layer in loaded.get_layer(BACKBONE).layers]
    assert any(trainable) and not all(trainable)


def test_missing_weights_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        build_model(
            TrainConfig(model="efficientnetb0", weights=str(tmp_path / "x.weights.h5")), (32, 32, 3), 2
        )
    with pytest.raises(ConfigError, match="trains from scratch"):
        build_model(TrainConfig(model="baseline_cnn", weights="imagenet"), (32, 32, 3), 2)


@pytest.mark.parametrize("name", ["baseline_cnn", "small_resnet"])
def test_safe_mode_reload_gives_identical_predictions(tmp_path, name):
    model = build_model(TrainConfig(model=name), (24, 24, 3), 2)
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    assert any(isinstance(layer, RandomRot90) for layer in reloaded.layers)
    x = _batch(size=24)
    np.testing.assert_array_equal(model.predict_on_batch(x), reloaded.predict_on_batch(x))


def test_rot90_layer_rotates_by_exact_quarter_turns():
    x = np.repeat(np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1), 64, axis=0)
    y = keras.ops.convert_to_numpy(RandomRot90(seed=3)(x, training=True))
    turns = [
        [k for k in range(4) if np.array_equal(y[i, :, :, 0], np.rot90(x[i, :, :, 0], k))] for i in range(64)
    ]
    assert all(len(t) == 1 for t in turns)
    assert set(t[0] for t in turns) == {0, 1, 2, 3}
    np.testing.assert_array_equal(RandomRot90(seed=3)(x, training=False), x)


def test_axis_zoom_is_identity_at_inference_bilinear_and_reflecting_in_training():
    from pipeline.models.layers import RandomAxisZoom, resample_matrices

    x = np.random.default_rng(0).integers(0, 256, (3, 12, 12, 2)).astype("float32")
    layer = RandomAxisZoom(0.2, seed=4)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, training=False)), x)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(resample_matrices(np.ones(2, "float32"), 5))[1], np.eye(5)
    )
    out = keras.ops.convert_to_numpy(layer(x, training=True))
    assert out.shape == x.shape and not np.allclose(out, x)
    assert out.min() >= x.min() - 1e-3 and out.max() <= x.max() + 1e-3  # a convex mix of pixels
    # zoom out by 1.5 on 4 pixels: the border samples reflect back into the image (weights sum to 1)
    m = keras.ops.convert_to_numpy(resample_matrices(np.array([1.5], "float32"), 4))[0]
    np.testing.assert_allclose(m.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(m[1], [0.25, 0.75, 0.0, 0.0], atol=1e-6)
    reloaded = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(reloaded, RandomAxisZoom) and reloaded.factor == 0.2


def test_axis_zoom_affine_path_is_the_matmul_zoom():
    """Under TensorFlow RandomAxisZoom runs TF's affine kernel; it must be the same zoom as the
    matmuls (JAX's path): same sampling law, reflect fill, within float rounding."""
    from pipeline.models.layers import RandomAxisZoom, zoom_by_affine, zoom_by_matmul

    rng = np.random.default_rng(1)
    scale = np.array([0.5, 0.9, 1.0, 1.1, 1.5, 2.3], "float32")  # zoom in, none, out, far out
    for shape in [(6, 12, 12, 2), (6, 50, 50, 3), (6, 9, 13, 1)]:
        x = rng.integers(0, 256, shape).astype("float32")
        affine = keras.ops.convert_to_numpy(zoom_by_affine(x, scale))
        matmul = keras.ops.convert_to_numpy(zoom_by_matmul(x, scale))
        np.testing.assert_allclose(affine, matmul, atol=5e-3)
        np.testing.assert_allclose(affine[2], x[2], atol=1e-3)  # scale 1: identity
    # the layer: same random scales on either path, so the same output for the same seed
    x = rng.integers(0, 256, (8, 20, 20, 3)).astype("float32")
    outs = {}
    for backends in [(), (keras.backend.backend(),)]:
        layer = RandomAxisZoom(0.2, seed=7)
        layer.AFFINE_BACKENDS = backends
        outs[backends] = keras.ops.convert_to_numpy(layer(x, training=True))
    a, b = outs.values()
    np.testing.assert_allclose(a, b, atol=5e-3)
    assert not np.allclose(a, x)
