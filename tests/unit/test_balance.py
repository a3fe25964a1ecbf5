"""balance stage: class_weight / undersample / oversample (OpenCV augmentation) / none."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from pipeline.config import BalanceConfig, Config
from pipeline.core import images, manifest
from pipeline.core.errors import DataError
from pipeline.stages import balance

NAMES = ["benign", "malignant", "other"]


def make_train(root: Path, counts: dict[int, int], size: int = 24) -> Path:
    """Tiny PNGs on disk (RGB, one class gray) and a train manifest with relative paths."""
    rng = np.random.default_rng(0)
    rows = []
    for label, n in counts.items():
        for i in range(n):
            path = Path("data/raw") / f"pt{label}{i % 3}" / f"{NAMES[label]}_{i:02d}.png"
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            channels = 1 if label == 1 else 3
            img = rng.integers(0, 256, (size, size + 6, channels), dtype=np.uint8)
            cv2.imwrite(str(root / path), img if channels == 3 else img[:, :, 0])
            data = (root / path).read_bytes()
            rows.append(
                {
                    "path": path.as_posix(),
                    "bytes": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "label": label,
                    "class_name": NAMES[label],
                    "patient_id": f"pt{label}{i % 3}",
                    "height": size,
                    "width": size + 6,
                    "channels": channels,
                    "dtype": "uint8",
                    "split": "train",
                }
            )
    csv = root / "data/splits/train.csv"
    manifest.write(pd.DataFrame(rows).sort_values("path"), csv)
    return csv


def run_balance(
    root: Path, strategy: str, tag: str = "", seed: int = 7
) -> tuple[pd.DataFrame, dict, dict, Path]:
    out = Path(f"data/balanced{tag}")
    outputs = {"balanced": out, "report": Path(f"reports/balance{tag}.json")}
    cfg = Config(balance=BalanceConfig(strategy=strategy, seed=seed))
    balance.run(cfg, {"train": Path("data/splits/train.csv")}, outputs)
    weights = json.loads((root / out / "class_weights.json").read_text())
    report = json.loads((root / outputs["report"]).read_text())
    return manifest.read(root / out / "train.csv"), weights, report, root / out


def test_class_weight_uses_the_papers_formula_and_keeps_rows(in_tmp):
    make_train(in_tmp, {0: 9, 1: 3})
    df, weights, report, out = run_balance(in_tmp, "class_weight")
    assert weights["weights"] == pytest.approx({"0": 3 / 12, "1": 9 / 12})  # w_0 = n_1/N, w_1 = n_0/N
    assert weights["sklearn_balanced"] == pytest.approx({"0": 12 / (2 * 9), "1": 12 / (2 * 3)})
    assert weights["class_names"] == {"0": "benign", "1": "malignant"}
    source = manifest.read(in_tmp / "data/splits/train.csv")
    assert df["path"].tolist() == source["path"].tolist()
    assert (df["source_path"] == df["path"]).all() and not df["augmented"].any()
    assert (out / "augmented").is_dir() and not any((out / "augmented").iterdir())
    assert report["counts_before"] == report["counts_after"] == {"benign": 9, "malignant": 3}
    assert report["weights"] == pytest.approx({"benign": 0.25, "malignant": 0.75})


def test_class_weight_multiclass_generalisation(in_tmp):
    make_train(in_tmp, {0: 6, 1: 3, 2: 1})
    _, weights, _, _ = run_balance(in_tmp, "class_weight")
    assert weights["weights"] == pytest.approx({"0": 4 / 10, "1": 7 / 10, "2": 9 / 10})


def test_undersample_drops_majority_rows_seeded(in_tmp):
    make_train(in_tmp, {0: 10, 1: 4})
    df, weights, report, _ = run_balance(in_tmp, "undersample", "a")
    again, _, _, _ = run_balance(in_tmp, "undersample", "b")
    other_seed, _, _, _ = run_balance(in_tmp, "undersample", "c", seed=99)
    assert df["label"].value_counts().to_dict() == {0: 4, 1: 4}
    source = manifest.read(in_tmp / "data/splits/train.csv")
    assert set(df["path"]) <= set(source["path"])
    assert set(df.loc[df["label"] == 1, "path"]) == set(source.loc[source["label"] == 1, "path"])
    assert df["path"].tolist() == again["path"].tolist()
    assert df["path"].tolist() != other_seed["path"].tolist()
    assert weights["weights"] == {"0": 1.0, "1": 1.0}
    assert report["counts_after"] == {"benign": 4, "malignant": 4}


def test_oversample_writes_augmented_images_pointing_to_sources(in_tmp):
    make_train(in_tmp, {0: 10, 1: 3, 2: 5})
    df, weights, report, out = run_balance(in_tmp, "oversample")
    assert df["label"].value_counts().to_dict() == {0: 10, 1: 10, 2: 10}
    assert df["path"].is_monotonic_increasing
    originals = df[~df["augmented"]]
    added = df[df["augmented"]]
    assert len(added) == 7 + 5 == report["n_augmented"]
    by_path = originals.set_index("path")
    for row in added.itertuples():
        path = Path(row.path)
        assert path.parent == Path("data/balanced/augmented") / row.class_name
        assert path.name.startswith(Path(row.source_path).stem + "_aug") and path.suffix == ".png"
        src = by_path.loc[row.source_path]
        assert row.patient_id == src["patient_id"] and row.label == src["label"]
        data = path.read_bytes()
        assert row.sha256 == hashlib.sha256(data).hexdigest() and row.bytes == len(data)
        img, src_img = images.decode_raw(data), images.decode_raw(Path(row.source_path).read_bytes())
        assert img.shape == src_img.shape and img.dtype == np.uint8  # gray stays gray, size kept
        assert (row.height, row.width, row.channels) == (src["height"], src["width"], src["channels"])
    assert added["sha256"].is_unique
    assert (out / "augmented").is_dir() and not (in_tmp / "data/balanced.partial").exists()
    assert weights["weights"] == {"0": 1.0, "1": 1.0, "2": 1.0}


def test_oversample_is_deterministic_under_the_seed(in_tmp):
    make_train(in_tmp, {0: 6, 1: 2})
    a, _, _, _ = run_balance(in_tmp, "oversample", "a")
    b, _, _, _ = run_balance(in_tmp, "oversample", "b")
    c, _, _, _ = run_balance(in_tmp, "oversample", "c", seed=8)
    assert a["sha256"].tolist() == b["sha256"].tolist()
    assert a["sha256"].tolist() != c["sha256"].tolist()


def test_none_passes_rows_through(in_tmp):
    make_train(in_tmp, {0: 5, 1: 2})
    df, weights, report, _ = run_balance(in_tmp, "none")
    assert len(df) == 7 and not df["augmented"].any()
    assert weights["weights"] == {"0": 1.0, "1": 1.0}
    assert report["counts_before"] == report["counts_after"]


def test_unreadable_source_fails_cleanly_without_partial_output(in_tmp):
    make_train(in_tmp, {0: 4, 1: 1})
    df = manifest.read(in_tmp / "data/splits/train.csv")
    Path(df.loc[df["label"] == 1, "path"].iloc[0]).write_bytes(b"not an image")
    with pytest.raises(DataError, match="cannot read"):
        run_balance(in_tmp, "oversample")
    assert not (in_tmp / "data/balanced").exists() and not (in_tmp / "data/balanced.partial").exists()


def test_single_class_train_split_is_an_error(in_tmp):
    make_train(in_tmp, {0: 4})
    with pytest.raises(DataError, match="single class"):
        run_balance(in_tmp, "class_weight")
