"""provenance.model_digest: two saves of the same weights agree, any changed weight disagrees."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import keras
import numpy as np

from pipeline.core.model_digest import model_digest
from pipeline.core.provenance import file_sha256


def _model() -> keras.Model:
    init = keras.initializers.Constant(0.1)  # used twice: config.json records a shared_object_id
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Flatten()(keras.layers.Conv2D(2, 3, kernel_initializer=init)(inputs))
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax", kernel_initializer=init)(x))


def _resave_with_date(path: Path, out: Path, date: str) -> None:
    """The same archive with another save date in metadata.json (as a later save would write)."""
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "metadata.json":
                data = json.dumps({**json.loads(data), "date_saved": date}).encode()
            dst.writestr(name, data)


def test_same_weights_saved_twice_give_one_digest(tmp_path: Path) -> None:
    keras.backend.clear_session()  # as in a new process, whatever models earlier tests built
    first = _model()
    first.save(tmp_path / "a.keras")
    keras.backend.clear_session()  # layer names restart as in a new process
    second = _model()  # new layer objects: other shared_object_ids in config.json
    second.set_weights(first.get_weights())
    second.save(tmp_path / "b.keras")
    _resave_with_date(tmp_path / "b.keras", tmp_path / "c.keras", "2001-01-01@00:00:00")
    assert file_sha256(tmp_path / "a.keras") != file_sha256(tmp_path / "c.keras")
    configs = [zipfile.ZipFile(tmp_path / n).read("config.json") for n in ("a.keras", "c.keras")]
    assert b"shared_object_id" in configs[0] and configs[0] != configs[1]
    assert model_digest(tmp_path / "a.keras") == model_digest(tmp_path / "c.keras")


def test_one_changed_weight_changes_the_digest(tmp_path: Path) -> None:
    model = _model()
    model.save(tmp_path / "a.keras")
    weights = model.get_weights()
    weights[-1] = weights[-1] + np.float32(1e-3)
    model.set_weights(weights)
    model.save(tmp_path / "b.keras")
    assert model_digest(tmp_path / "a.keras") != model_digest(tmp_path / "b.keras")


def test_a_file_that_is_not_a_keras_archive_is_hashed_as_bytes(tmp_path: Path) -> None:
    path = tmp_path / "model.keras"
    path.write_bytes(b"not a zip")
    assert model_digest(path) == file_sha256(path)
