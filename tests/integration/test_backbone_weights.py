"""Pretrained backbones offline: imagenet without network, Keras-published *_notop.h5 and
.weights.h5 files, a file of another architecture -> one clear line each."""

from __future__ import annotations

import warnings

import h5py
import numpy as np
import pytest

from pipeline.core.errors import ConfigError
from pipeline.models import applications


def _offline(monkeypatch, tmp_path):
    from keras.src.utils import file_utils

    def no_network(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- [Errno -3]")

    monkeypatch.setattr(file_utils, "get_file", no_network)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))


def test_imagenet_offline_is_one_line_saying_where_keras_looks(monkeypatch, tmp_path, in_tmp):
    _offline(monkeypatch, tmp_path)
    with pytest.raises(ConfigError) as err:
        applications.build_backbone("mobilenetv2", 32, "imagenet")
    text = str(err.value)
    assert "\n" not in text
    expected = (
        tmp_path / "keras_home/models/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
    )
    assert str(expected) in text and "backbones/" in text


def _legacy_notop(model, path):
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)


def test_keras_published_notop_and_weights_h5_files_load(in_tmp):
    donor = applications.build_backbone("mobilenetv2", 32, "none")
    donor.set_weights([np.full(w.shape, 0.01 * i, w.dtype) for i, w in enumerate(donor.get_weights())])
    (in_tmp / "backbones").mkdir()
    legacy = in_tmp / "backbones/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
    _legacy_notop(donor, legacy)
    donor.save_weights(in_tmp / "backbones/mine.weights.h5")
    for weights in (str(legacy), "backbones/mine.weights.h5", "imagenet"):  # imagenet: backbones/<Keras name>
        loaded = applications.build_backbone("mobilenetv2", 32, weights)
        for a, b in zip(loaded.get_weights(), donor.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
    record = applications.weights_record("imagenet", "mobilenetv2", 32)
    assert record["path"] == legacy.relative_to(in_tmp).as_posix() and len(record["sha256"]) == 64


def test_weights_of_another_architecture_is_one_line_without_warnings(in_tmp):
    other = applications.build_backbone("mobilenetv2", 32, "none")
    other.save_weights(in_tmp / "mobilenet.weights.h5")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not ~350 warnings: none
        with pytest.raises(ConfigError) as err:
            applications.build_backbone("efficientnetb0", 32, "mobilenet.weights.h5")
    text = str(err.value)
    assert "\n" not in text and not text.endswith(":")
    assert "does not fit a efficientnetb0 backbone at 32 px" in text and "layers did not match" in text
