"""split.allow_image_level: the documented way forward for cohorts too small to split by patient."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.config import Config, SplitConfig
from pipeline.config.split_level import IMAGE_LEVEL_WARNING
from pipeline.core import manifest
from pipeline.core.errors import DataError
from pipeline.stages import split


def cohort(n_patients: int, per_patient: int = 40, duplicates: int = 0) -> pd.DataFrame:
    """Patients with images of both classes; the first `duplicates` images repeat one sha256 each
    under a second path (the same file copied)."""
    rng = np.random.default_rng(0)
    rows = []
    for pid in range(n_patients):
        for i in range(per_patient):
            label = i % 2
            rows.append(
                {
                    "path": f"data/raw/p{pid}/{label}/img{i:03d}.png",
                    "sha256": f"{pid:03d}{i:04d}".ljust(64, "0"),
                    "label": label,
                    "class_name": ("benign", "malignant")[label],
                    "patient_id": f"p{pid}",
                }
            )
    for row in rows[:duplicates]:
        rows.append(row | {"path": row["path"].replace(".png", "_copy.png")})
    df = pd.DataFrame(rows).sample(frac=1.0, random_state=int(rng.integers(100)))
    return df.astype({"label": "Int64", "patient_id": "string"})


def run_stage(root: Path, df: pd.DataFrame, cfg: SplitConfig) -> dict[str, Path]:
    validated = root / "validated.csv"
    manifest.write(df, validated)
    outputs = {"splits": root / "splits", "report": root / "split.json"}
    split.run(Config(split=cfg), {"validated": validated}, outputs)
    return outputs


def test_two_patients_stop_with_one_line_naming_the_option():
    with pytest.raises(DataError) as err:
        split.assign(cohort(2), SplitConfig())
    message = str(err.value)
    assert "only 2 patient group(s)" in message and "split.allow_image_level: true" in message
    assert "\n" not in message


def test_too_few_images_for_any_split_stop_without_naming_the_option():
    # the tb sample: 2 films, one per patient and class; splitting by image cannot help either
    with pytest.raises(DataError) as err:
        split.assign(cohort(2, per_patient=1).assign(label=pd.array([0, 1], dtype="Int64")), SplitConfig())
    message = str(err.value)
    assert "only 2 patient group(s)" in message and "add patients" in message
    assert "allow_image_level" not in message


def test_image_level_split_records_the_warning_and_never_shares_an_image(in_tmp, caplog):
    outputs = run_stage(in_tmp, cohort(2, duplicates=12), SplitConfig(allow_image_level=True))
    report = json.loads(outputs["report"].read_text())
    assert report["image_level"] is True
    assert report["image_level_warning"] == IMAGE_LEVEL_WARNING
    assert "images of the same patient may be in train and test" in IMAGE_LEVEL_WARNING
    assert IMAGE_LEVEL_WARNING in caplog.text
    parts = {name: pd.read_csv(outputs["splits"] / f"{name}.csv") for name in ("train", "val", "test")}
    assert all(len(df) for df in parts.values())
    both = pd.concat([df.assign(split=name) for name, df in parts.items()])
    assert len(both) == 2 * 40 + 12
    assert (both.groupby("sha256")["split"].nunique() == 1).all()  # copies of one image stay together
    assert report["leak_check"]["shared_sha256"] == 0
    assert report["leak_check"]["shared_patient_id"] == 2  # said, not hidden


def test_patient_split_report_says_it_is_not_image_level(in_tmp):
    report = json.loads(run_stage(in_tmp, cohort(12, per_patient=6), SplitConfig())["report"].read_text())
    assert report["image_level"] is False and report["image_level_warning"] is None


def test_image_level_on_data_with_patients_enough_stops_before_writing(in_tmp):
    with pytest.raises(DataError) as err:
        run_stage(in_tmp, cohort(12, per_patient=6), SplitConfig(allow_image_level=True))
    assert str(err.value) == (
        "split.allow_image_level is true but the data has 12 patient groups, enough to split by patient; "
        "set split.allow_image_level: false"
    )
    assert not (in_tmp / "splits").exists() and not (in_tmp / "split.json").exists()
