"""image_properties / property_drift: a gamma shift of real chest X-rays is flagged, a same-source
resample is not, a change of bit depth or photometric interpretation is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.core import images
from pipeline.drift.properties import image_properties, property_drift

SIZE = 64


@pytest.fixture(scope="module")
def kermany_normal() -> tuple[pd.DataFrame, np.ndarray]:
    """70 NORMAL films drawn at random from ../shared kermany-dev: validated-style rows and 64 px uint8 arrays."""
    root = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "kermany-dev" / "NORMAL"
    if not root.is_dir():
        pytest.skip("../shared/datasets/kermany-dev is not present on this machine")
    every = sorted(root.glob("*.jpeg"))  # sorted names group the sources (IM-*, NORMAL2-*): shuffle
    paths = [every[i] for i in np.random.default_rng(0).permutation(len(every))[:70]]
    raw = [images.decode_raw(p.read_bytes()) for p in paths]
    rows = pd.DataFrame(
        {
            "path": [f"NORMAL/{p.name}" for p in paths],
            "class_name": "NORMAL",
            "height": [r.shape[0] for r in raw],
            "width": [r.shape[1] for r in raw],
            "channels": [r.shape[2] if r.ndim == 3 else 1 for r in raw],
            "dtype": [str(r.dtype) for r in raw],
        }
    )
    arrays = np.stack([images.preprocess(p, SIZE, channels=1) for p in paths])
    return rows, arrays


def flagged(entries: list[dict]) -> set[str]:
    return {e["name"] for e in entries if e["flag"]}


def test_gamma_shift_of_real_films_is_flagged_and_a_resample_is_not(kermany_normal):
    rows, arrays = kermany_normal
    ref = image_properties(rows.iloc[:40], arrays[:40])
    same = image_properties(rows.iloc[40:].reset_index(drop=True), arrays[40:])
    gamma = np.rint(255 * (arrays[40:] / 255.0) ** 0.6).astype(np.uint8)  # brighter, flatter film
    shifted = image_properties(rows.iloc[40:].reset_index(drop=True), gamma)
    assert flagged(property_drift(ref, same)) == set()
    entries = property_drift(ref, shifted)
    assert "intensity_mean" in flagged(entries)
    mean = next(e for e in entries if e["name"] == "intensity_mean")
    assert mean["class"] == "NORMAL" and mean["now"]["median"] > mean["then"]["median"]
    assert "KS" in mean["detail"]


def test_bit_depth_and_photometric_change_is_flagged():
    n = 60
    base = pd.DataFrame(
        {
            "path": [f"X/{i}.dcm" for i in range(n)],
            "class_name": "X",
            "height": 512,
            "width": 512,
            "channels": 1,
            "dtype": "uint8",
            "photometric": "MONOCHROME2",
        }
    )
    new = base.assign(dtype="uint16", photometric="MONOCHROME1")
    flags = flagged(property_drift(image_properties(base, None), image_properties(new, None)))
    assert flags == {"bit_depth", "photometric"}
    entry = next(
        e
        for e in property_drift(image_properties(base, None), image_properties(new, None))
        if e["name"] == "bit_depth"
    )
    assert entry["kind"] == "categorical" and entry["distance"] == pytest.approx(1.0)
    assert entry["now"]["shares"] == {"16": 1.0}


def test_a_tiny_shift_on_many_images_is_significant_but_not_flagged():
    rng = np.random.default_rng(0)
    n = 20000
    ref = pd.DataFrame({"class_name": "A", "intensity_mean": rng.normal(100, 10, n)})
    now = pd.DataFrame({"class_name": "A", "intensity_mean": rng.normal(101, 10, n)})
    (entry,) = property_drift(ref, now)
    assert entry["p_value"] < 1e-6 and not entry["flag"]  # KS ~0.04 < min_effect 0.3
    assert property_drift(ref, now, min_effect=0.01)[0]["flag"]


def test_unlabelled_new_images_are_compared_with_every_reference_image():
    ref = pd.DataFrame({"class_name": ["A"] * 50 + ["B"] * 50, "intensity_mean": np.arange(100.0)})
    now = pd.DataFrame({"class_name": [None] * 30, "intensity_mean": np.full(30, 500.0)})
    (entry,) = property_drift(ref, now)
    assert entry["class"] is None and entry["flag"] and entry["now"]["n"] == 30 and entry["then"]["n"] == 100


def test_arrays_must_align_with_rows():
    with pytest.raises(ValueError, match="row-aligned"):
        image_properties(pd.DataFrame({"path": ["a.png"]}), np.zeros((2, 4, 4, 1), np.uint8))
