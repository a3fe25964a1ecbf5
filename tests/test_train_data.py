"""The streaming PyDataset (uint8 batches, memory bound, seeded shuffle) and predict_proba."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from test_train_stage import write_images

from pipeline.errors import DataError
from pipeline.training.data import ManifestDataset, predict_proba


@pytest.fixture
def manifest(in_tmp) -> pd.DataFrame:
    return write_images(Path("img"), 20, n_classes=2, size=24)


def test_batches_are_uint8_and_nothing_is_held_when_streaming(manifest):
    ds = ManifestDataset.from_manifest(manifest, 2, image_size=16, channels=3, batch_size=8, cache_bytes=0)
    assert ds.cache is None and len(ds) == 3
    x, y = ds[2]
    assert x.dtype == np.uint8 and x.shape == (4, 16, 16, 3)  # last, partial batch; resized 24 -> 16
    assert y.shape == (4, 2) and set(np.unique(y)) <= {0.0, 1.0}
    held = [v for v in vars(ds).values() if isinstance(v, np.ndarray) and v.dtype != np.int64]
    assert held == []  # no decoded pixels kept: only index/label arrays


def test_cache_only_when_it_fits_the_budget(manifest):
    one = 24 * 24 * 1
    small = ManifestDataset.from_manifest(
        manifest, 2, image_size=24, channels=1, batch_size=8, cache_bytes=20 * one - 1
    )
    big = ManifestDataset.from_manifest(
        manifest, 2, image_size=24, channels=1, batch_size=8, cache_bytes=20 * one
    )
    assert small.cache is None
    assert big.cache.dtype == np.uint8 and big.cache.nbytes == 20 * one
    np.testing.assert_array_equal(big[0][0], small[0][0])


def test_shuffle_is_seeded_per_epoch(manifest):
    def order(epoch, seed=5):
        ds = ManifestDataset.from_manifest(
            manifest, 2, image_size=16, channels=3, batch_size=8, shuffle=True, seed=seed
        )
        ds.set_epoch(epoch)
        return ds.order.copy()

    np.testing.assert_array_equal(order(1), order(1))
    assert not np.array_equal(order(0), order(1))
    assert not np.array_equal(order(1), order(1, seed=6))
    assert sorted(order(3)) == list(range(20))


def test_unreadable_image_is_a_data_error(manifest):
    Path(manifest["path"][3]).write_bytes(b"not a png")
    ds = ManifestDataset.from_manifest(manifest, 2, image_size=16, channels=3, batch_size=4)
    with pytest.raises(DataError, match="cannot read image"):
        ds[0]


def _flip_sensitive_model(flip_mode: str | None) -> keras.Model:
    """Not flip-invariant: probabilities depend on where the bright pixels are."""
    inputs = x = keras.Input((16, 16, 3))
    if flip_mode:  # trained with these flips (identity at inference): TTA may use them
        x = keras.layers.RandomFlip(flip_mode, seed=0)(x)
    x = keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(x))
    outputs = keras.layers.Dense(
        3, activation="softmax", kernel_initializer=keras.initializers.RandomNormal(seed=1)
    )(x)
    return keras.Model(inputs, outputs)


def _images(manifest) -> np.ndarray:
    return np.stack([ManifestDataset(manifest["path"], None, 0, 16, 3, 1).load(i) for i in range(20)]).astype(
        np.float32
    )


def test_tta_uses_only_the_flips_the_model_was_trained_with(manifest):
    model = _flip_sensitive_model("horizontal")  # e.g. chest X-rays: never upside down
    tta = predict_proba(model, manifest, 16, 3, batch_size=6, tta=True)
    imgs = _images(manifest)
    expected = np.mean([model.predict_on_batch(v) for v in (imgs, imgs[:, :, ::-1])], axis=0)
    np.testing.assert_allclose(tta, expected, rtol=1e-5, atol=1e-6)
    no_flips = _flip_sensitive_model(None)
    np.testing.assert_array_equal(
        predict_proba(no_flips, manifest, 16, 3, tta=True), predict_proba(no_flips, manifest, 16, 3)
    )


def test_predict_proba_shape_and_tta(manifest):
    model = _flip_sensitive_model("horizontal_and_vertical")
    plain = predict_proba(model, manifest, 16, 3, batch_size=6)
    tta = predict_proba(model, manifest, 16, 3, batch_size=6, tta=True)
    assert plain.shape == tta.shape == (20, 3) and plain.dtype == np.float32
    np.testing.assert_allclose(tta.sum(axis=1), 1.0, rtol=1e-5)
    assert not np.allclose(plain, tta)
    imgs = _images(manifest)
    expected = np.mean([model.predict_on_batch(v) for v in (imgs, imgs[:, :, ::-1], imgs[:, ::-1])], axis=0)
    np.testing.assert_allclose(tta, expected, rtol=1e-5, atol=1e-6)


def test_mixed_precision_model_is_saved_computing_in_float32(tmp_path):
    from pipeline.config import TrainConfig
    from pipeline.models import build_model
    from pipeline.training.export import as_float32

    cfg = TrainConfig(model="small_resnet", width=4)

    def rebuild():
        return build_model(cfg, (16, 16, 1), 2)

    keras.mixed_precision.set_global_policy("mixed_float16")  # what a GPU run trains under
    try:
        mixed = rebuild()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert mixed.get_layer("probs").compute_dtype == "float32"
    assert any(layer.compute_dtype == "float16" for layer in mixed.layers)
    x = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 1)).astype("float32")
    saved = as_float32(mixed, rebuild)
    saved.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert {layer.compute_dtype for layer in loaded.layers if layer.weights} == {"float32"}
    for a, b in zip(mixed.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(loaded.predict_on_batch(x), mixed.predict_on_batch(x), atol=5e-3)
