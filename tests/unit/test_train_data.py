"""The array input pipeline (ArrayBatches: uint8 gathers from a memmap, seeded shuffle, prefetch,
class weights as sample weights), the preprocess stage's writer, and predict_proba / TTA."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import keras
import numpy as np
import pandas as pd
import pytest
from helpers.train_inputs import write_images

from pipeline import arrays, config
from pipeline.arrays.build import write_images as write_npy
from pipeline.core import images
from pipeline.core.errors import DataError
from pipeline.stages import preprocess
from pipeline.training.data import ArrayBatches
from pipeline.training.predict import predict_images, predict_proba


@pytest.fixture
def manifest(in_tmp) -> pd.DataFrame:
    return write_images(Path("img"), 20, n_classes=2, size=24)


@pytest.fixture
def mapped(manifest) -> np.ndarray:
    write_npy(manifest["path"].tolist(), Path("x.npy"), 16, 3)
    return np.load("x.npy", mmap_mode="r")


def test_batches_are_uint8_gathers_from_the_memmap(manifest, mapped):
    ds = ArrayBatches(mapped, manifest["label"], 2, batch_size=8)
    assert len(ds) == 3
    x, y = ds[2]
    assert x.dtype == np.uint8 and x.shape == (4, 16, 16, 3)  # last, partial batch; resized 24 -> 16
    np.testing.assert_array_equal(x, mapped[16:20])
    np.testing.assert_array_equal(y, np.eye(2, dtype=np.float32)[manifest["label"][16:20]])
    held = [k for k, v in vars(ds).items() if isinstance(v, np.ndarray) and v.ndim > 2]
    assert held == ["images"] and isinstance(ds.images, np.memmap)  # no copy of the pixels
    ds.close()


def test_class_weights_become_sample_weights(manifest, mapped):
    ds = ArrayBatches(
        mapped, manifest["label"], 2, batch_size=8, shuffle=True, seed=3, class_weight={0: 0.5, 1: 2.0}
    )
    ds.set_epoch(1)
    x, y, w = ds[0]
    np.testing.assert_array_equal(x, np.asarray(mapped)[ds.batch_indices(0)])
    np.testing.assert_array_equal(w, np.where(y[:, 1] == 1, 2.0, 0.5).astype(np.float32))
    ds.close()


def test_a_second_reader_thread_never_leaks_another_epochs_batches(manifest, mapped):
    """Keras' TF trainer builds epoch N+1's tf.data iterator at the end of epoch N, before the
    callbacks switch the order: that generator thread reads batches while set_epoch runs. The
    batches the trainer then reads must be exactly its epoch's, and no reader may fail."""
    import threading

    labels = np.arange(20) % 2
    ds = ArrayBatches(mapped, labels, 2, batch_size=2, shuffle=True, seed=11, prefetch=3)
    stop, errors = threading.Event(), []

    def stale_reader():
        try:
            while not stop.is_set():
                for i in range(len(ds)):
                    ds[i]
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(repr(exc))

    reader = threading.Thread(target=stale_reader)
    reader.start()
    try:
        for epoch in range(1, 120):
            ds.set_epoch(epoch)
            order = np.random.default_rng([11, epoch]).permutation(20)
            for i in range(len(ds)):
                x, _ = ds[i]
                np.testing.assert_array_equal(x, np.asarray(mapped)[order[2 * i : 2 * i + 2]])
    finally:
        stop.set()
        reader.join()
        ds.close()
    assert errors == []


def test_shuffle_is_seeded_per_epoch_and_prefetch_follows_it(manifest, mapped):
    def batches(epoch, seed=5):
        ds = ArrayBatches(mapped, manifest["label"], 2, batch_size=8, shuffle=True, seed=seed)
        ds[0]  # starts prefetching epoch 0's next batches
        ds.set_epoch(epoch)  # must drop them
        out = ds.order.copy(), [ds[i][0].copy() for i in range(len(ds))]
        ds.close()
        return out

    (o1, b1), (o1b, b1b) = batches(1), batches(1)
    np.testing.assert_array_equal(o1, o1b)
    for a, b in zip(b1, b1b, strict=True):
        np.testing.assert_array_equal(a, b)
    # the last batch (4 rows) is filled up with the epoch's first 4: never a short training batch
    np.testing.assert_array_equal(np.concatenate(b1), np.asarray(mapped)[np.r_[o1, o1[:4]]])
    assert {len(b) for b in b1} == {8}
    assert not np.array_equal(batches(0)[0], o1)
    assert not np.array_equal(batches(1, seed=6)[0], o1)
    assert sorted(o1) == list(range(20))


def test_writer_is_bit_identical_across_workers_and_pools(manifest):
    paths = manifest["path"].tolist()
    digests = set()
    for i, (workers, kind) in enumerate([(1, "thread"), (3, "thread"), (2, "process")]):
        write_npy(paths, Path(f"a{i}.npy"), 16, 3, workers=workers, kind=kind)
        digests.add(hashlib.sha256(Path(f"a{i}.npy").read_bytes()).hexdigest())
    assert len(digests) == 1
    got = np.load("a0.npy")
    np.testing.assert_array_equal(got, np.stack([images.preprocess(p, 16, 3) for p in paths]))


def test_unreadable_image_is_a_data_error(manifest):
    Path(manifest["path"][3]).write_bytes(b"not a png")
    with pytest.raises(DataError, match="cannot read image .*_0003_"):
        write_npy(manifest["path"].tolist(), Path("x.npy"), 16, 3)


def _stage_inputs(root: Path, manifest: pd.DataFrame) -> dict[str, Path]:
    for sub, names in (("balanced", ["train"]), ("splits", ["val", "test"])):
        (root / sub).mkdir(parents=True, exist_ok=True)
        for name in names:
            manifest.to_csv(root / sub / f"{name}.csv", index=False)
    return {"balanced": root / "balanced", "splits": root / "splits"}


def test_preprocess_stage_layout_window_and_no_partial_output(manifest):
    inputs = _stage_inputs(Path("d"), manifest)
    cfg = config.from_dict({"preprocess": {"image_size": 16, "channels": 1}})
    out = {"preprocessed": Path("pre")}
    preprocess.run(cfg, inputs, out)
    meta = arrays.read_meta(Path("pre"))
    assert (meta["image_size"], meta["channels"], meta["window"]) == (16, 1, None)
    assert sorted(p.name for p in Path("pre").iterdir()) == [
        "meta.json",
        "test.csv",
        "test.npy",
        "train.csv",
        "train.npy",
        "val.csv",
        "val.npy",
    ]
    split = arrays.load_split(Path("pre"), "val", meta)
    assert split.images.shape == (20, 16, 16, 1) and isinstance(split.images, np.memmap)
    assert Path("pre/val.csv").read_bytes() == Path("d/splits/val.csv").read_bytes()
    first = {p.name: p.read_bytes() for p in Path("pre").iterdir()}
    preprocess.run(cfg, inputs, out)  # same inputs -> same bytes, meta.json included
    assert {p.name: p.read_bytes() for p in Path("pre").iterdir()} == first
    Path("window.json").write_text(json.dumps({"window": [0, 1000]}))
    preprocess.run(cfg, {**inputs, "intensity": Path("window.json")}, out)
    assert arrays.read_meta(Path("pre"))["window"] == [0.0, 1000.0]
    assert Path("pre/train.npy").read_bytes() == first["train.npy"]  # 8-bit images: no window applies
    deep = np.random.default_rng(0).integers(0, 1000, (16, 16), dtype=np.uint16)
    cv2.imwrite(manifest["path"][0], deep)  # a 16-bit radiograph: the dataset window maps 0..1000
    preprocess.run(cfg, {**inputs, "intensity": Path("window.json")}, out)
    np.testing.assert_array_equal(
        np.load("pre/train.npy")[0], images.preprocess(manifest["path"][0], 16, 1, (0.0, 1000.0))
    )
    Path(manifest["path"][5]).write_bytes(b"")  # a bad image: the previous output stays whole
    with pytest.raises(DataError, match="cannot read image"):
        preprocess.run(cfg, inputs, out)
    assert not Path("pre.tmp").exists() and arrays.read_meta(Path("pre"))["window"] == [0.0, 1000.0]


def test_misaligned_arrays_are_a_data_error(manifest):
    inputs = _stage_inputs(Path("d"), manifest)
    preprocess.run(
        config.from_dict({"preprocess": {"image_size": 16}}), inputs, {"preprocessed": Path("pre")}
    )
    pd.read_csv("pre/val.csv").iloc[:-1].to_csv("pre/val.csv", index=False)
    with pytest.raises(DataError, match="expected uint8 \\(19, 16, 16, 3\\)"):
        arrays.load_split(Path("pre"), "val")


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
    return np.stack([images.preprocess(p, 16, 3) for p in manifest["path"]]).astype(np.float32)


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
    arr = _images(manifest).astype(np.uint8)
    np.testing.assert_allclose(predict_images(model, arr, batch_size=7, tta=True), tta, rtol=1e-5, atol=1e-6)
    imgs = _images(manifest)
    # the group the two flips generate: identity, mirror, upside down, both (= a half turn)
    views = (imgs, imgs[:, :, ::-1], imgs[:, ::-1], imgs[:, ::-1, ::-1])
    expected = np.mean([model.predict_on_batch(v) for v in views], axis=0)
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
