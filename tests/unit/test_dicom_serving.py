"""data.dicom.voi travels with the model: a DICOM with its own window, sent to `medpipe predict` or
the pyfunc (pipeline.serving.predictor.load_batch), becomes the same pixels as the training arrays
the preprocess stage made from regroup's rows under either policy (header: the file's window;
dataset: the VOI-less copy mapped by the dataset window)."""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath
from types import SimpleNamespace

import numpy as np
import pytest
from helpers.dicom_films import PHI, film, ramp

from pipeline.config import from_dict
from pipeline.core import images, pseudonym
from pipeline.core.errors import DataError
from pipeline.core.label_map import LabelMap
from pipeline.formats import get
from pipeline.formats.base import RawFile
from pipeline.serving.predictor import ServingConfig, load_batch
from pipeline.stages.train import _label_map

SIZE, CHANNELS = 16, 1
DATASET_WINDOW = [0.0, 4095.0]  # what validate records for VOI-less 12-bit films


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv(pseudonym.KEY_ENV, "unit-test-key-0123456789")
    pseudonym._key.cache_clear()
    yield
    pseudonym._key.cache_clear()


def _training_array(root: Path, data: bytes, voi: str, window) -> np.ndarray:
    """What the stages feed the model: regroup's row for the film (a VOI-less copy under voi:
    dataset), decoded and resized by the preprocess stage's images.preprocess."""
    rel = "cxr/A/film.dcm"
    path = root / "data/raw" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    raw = RawFile(f"data/raw/{rel}", PurePosixPath(rel), len(data), hashlib.sha256(data).hexdigest())
    other = RawFile("data/raw/cxr/B/b.dcm", PurePosixPath("cxr/B/b.dcm"), 0, "0" * 64)
    (root / other.path).parent.mkdir(parents=True, exist_ok=True)
    (root / other.path).write_bytes(film(ramp(seed=9), bits_stored=12))
    cfg = from_dict({"data": {"format": "dicom", "dicom": {"voi": voi}}}).data
    (root / "data/interim/extracted").mkdir(parents=True, exist_ok=True)
    rows = get("dicom").regroup([raw, other], cfg, root / "data/interim/extracted").rows
    row = next(r for r in rows if (r["source_file"] or r["path"]) == raw.path)
    assert (row["source_file"] is not None) == (voi == "dataset")
    return images.preprocess(row["path"], SIZE, CHANNELS, tuple(window) if window else None)


def _serving(voi: str, window) -> ServingConfig:
    labels = {"format": "dicom", "classes": ["A", "B"], "positive": "B", "dicom_voi": voi}
    meta = {"image_size": SIZE, "channels": CHANNELS, "window": window}
    label_map = _label_map(SimpleNamespace(labels=labels, meta=meta))  # the train stage's label_map.json
    assert label_map["dicom_voi"] == voi
    return ServingConfig.from_label_map(label_map)


@pytest.mark.parametrize(("voi", "window"), [("header", None), ("dataset", DATASET_WINDOW)])
def test_a_windowed_dicom_is_served_as_it_was_trained(in_tmp, voi, window):
    data = film(ramp(), bits_stored=12, window=(1200, 900))
    trained = _training_array(in_tmp, data, voi, window)
    served = load_batch([data], _serving(voi, window), ["film.dcm"])[0]
    np.testing.assert_array_equal(served, trained)
    other = "dataset" if voi == "header" else "header"  # the skew this policy in the label map removes
    skewed = load_batch(
        [data], ServingConfig(**{**_serving(voi, window).to_dict(), "dicom_voi": other}), ["f"]
    )
    assert np.abs(skewed[0].astype(int) - trained.astype(int)).max() > 20


def test_label_map_voi_policy_defaults_to_header_and_is_checked():
    assert LabelMap.parse({"classes": ["a", "b"], "positive": "b"}).dicom_voi == "header"
    before = {"classes": ["a", "b"], "positive": None, "threshold": None, "image_size": 8, "channels": 1}
    assert ServingConfig.from_dict(before).dicom_voi == "header"  # a model registered before the key
    with pytest.raises(DataError, match="dicom_voi 'window' is not one of"):
        LabelMap.parse({"classes": ["a", "b"], "dicom_voi": "window"})


def test_the_mlflow_input_example_of_a_dicom_is_its_pixels_without_the_header(tmp_path):
    from pipeline.serving.pyfunc_model import example_image

    path = tmp_path / "film.dcm"
    path.write_bytes(film(ramp(), bits_stored=12, window=(1200, 900), patient="MRN-EXAMPLE-1"))
    cfg = _serving("dataset", DATASET_WINDOW)
    example = example_image(path, cfg)
    assert example.startswith(b"\x89PNG") and not [
        v for v in ("MRN-EXAMPLE-1", *PHI.values()) if v.encode() in example
    ]
    served = load_batch([path.read_bytes()], cfg, ["film.dcm"])
    np.testing.assert_array_equal(load_batch([example], cfg, ["example.png"]), served)  # scores the same
