"""split stage: stratified, patient-grouped, seeded, leak-free train/val/test."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline.cli import commands as cli
from pipeline.config import Config, SplitConfig
from pipeline.core import manifest
from pipeline.core.errors import ConfigError, DataError
from pipeline.splitting import report as split_report
from pipeline.stages import split

NAMES = ["NORMAL", "PNEUMONIA", "COVID", "TB"]


def make_manifest(
    n_patients: int = 60,
    n_classes: int = 2,
    seed: int = 0,
    per_patient: tuple[int, int] = (1, 12),
    mixed: bool = False,
    weights: list[float] | None = None,
) -> pd.DataFrame:
    """Synthetic validated manifest; each patient one class (or mixed labels, IDC-style)."""
    rng = np.random.default_rng(seed)
    p = np.asarray(weights or [1.0] * n_classes, float)
    rows = []
    for pid in range(n_patients):
        patient_label = int(rng.choice(n_classes, p=p / p.sum())) if pid >= n_classes * 3 else pid % n_classes
        for i in range(int(rng.integers(per_patient[0], per_patient[1] + 1))):
            label = int(rng.integers(n_classes)) if mixed else patient_label
            rows.append(
                {
                    "path": f"data/raw/p{pid:04d}/img{i:03d}.png",
                    "bytes": 100 + i,
                    "sha256": f"{pid:04d}{i:03d}".ljust(64, "0"),
                    "label": label,
                    "class_name": NAMES[label],
                    "patient_id": f"p{pid:04d}",
                    "x": pd.NA,
                    "y": pd.NA,
                    "source_split": pd.NA,
                }
            )
    df = pd.DataFrame(rows).sample(frac=1.0, random_state=seed)  # unsorted input on purpose
    return df.astype({"label": "Int64", "bytes": "Int64", "source_split": "string", "patient_id": "string"})


def assert_no_leak(df: pd.DataFrame) -> None:
    for column in ("patient_id", "sha256"):
        owners = df.groupby(column)["split"].nunique()
        assert (owners == 1).all(), f"{column} in two splits: {owners[owners > 1].index[:3].tolist()}"


def run_stage(root: Path, df: pd.DataFrame, cfg: SplitConfig, tag: str = "") -> tuple[Path, dict]:
    validated = root / f"validated{tag}.csv"
    manifest.write(df, validated)
    outputs = {"splits": root / f"splits{tag}", "report": root / f"split{tag}.json"}
    split.run(Config(split=cfg), {"validated": validated}, outputs)
    return outputs["splits"], json.loads(outputs["report"].read_text())


def test_two_runs_give_byte_identical_manifests(in_tmp):
    df = make_manifest(80, seed=3)
    a, report_a = run_stage(in_tmp, df, SplitConfig(seed=5), "a")
    b, report_b = run_stage(in_tmp, df.sample(frac=1.0, random_state=9), SplitConfig(seed=5), "b")
    for name in ("train", "val", "test"):
        assert (a / f"{name}.csv").read_bytes() == (b / f"{name}.csv").read_bytes()
    assert report_a == report_b
    c, _ = run_stage(in_tmp, df, SplitConfig(seed=6), "c")
    assert (a / "test.csv").read_bytes() != (c / "test.csv").read_bytes()  # the seed matters


def test_outputs_keep_columns_add_split_and_are_sorted_by_path(in_tmp):
    df = make_manifest(40, seed=1)
    out, report = run_stage(in_tmp, df, SplitConfig())
    parts = {name: manifest.read(out / f"{name}.csv") for name in ("train", "val", "test")}
    for name, part in parts.items():
        assert list(part.columns) == [*df.columns, "split"]
        assert (part["split"] == name).all()
        assert part["path"].is_monotonic_increasing
    assert sum(len(p) for p in parts.values()) == len(df) == report["n_images"]["total"]
    assert report["leak_check"] == {"shared_patient_id": 0, "shared_sha256": 0}


@pytest.mark.parametrize("seed", range(12))
def test_no_patient_or_image_leak_on_random_imbalanced_inputs(seed):
    rng = np.random.default_rng(seed)
    n_classes = int(rng.integers(2, 5))
    df = make_manifest(
        n_patients=int(rng.integers(30, 150)),
        n_classes=n_classes,
        seed=seed,
        per_patient=(1, int(rng.integers(2, 40))),
        mixed=bool(seed % 3 == 0),
        weights=list(rng.uniform(0.1, 1.0, n_classes)),
    )
    cfg = SplitConfig(
        seed=seed, val_fraction=float(rng.uniform(0.1, 0.25)), test_fraction=float(rng.uniform(0.1, 0.25))
    )
    result, _ = split.assign(df, cfg)
    assert len(result) == len(df) and set(result["path"]) == set(df["path"])
    assert_no_leak(result)
    assert set(result["split"]) == {"train", "val", "test"}


def test_fractions_met_at_image_level_and_per_class():
    df = make_manifest(300, n_classes=2, seed=11, per_patient=(2, 30), weights=[0.75, 0.25])
    cfg = SplitConfig(seed=1, val_fraction=0.15, test_fraction=0.2)
    result, info = split.assign(df, cfg)
    report = split_report.build(result, info, cfg)
    assert report["fraction"]["test"] == pytest.approx(0.2, abs=0.02)
    assert report["fraction"]["val"] == pytest.approx(0.15, abs=0.02)
    for cls, per_split in report["per_class"].items():
        total = sum(v["images"] for v in per_split.values())
        assert per_split["test"]["images"] / total == pytest.approx(0.2, abs=0.05), cls


def test_multiclass_every_split_has_every_class():
    df = make_manifest(90, n_classes=4, seed=2, weights=[0.5, 0.3, 0.15, 0.05])
    result, _ = split.assign(df, SplitConfig(seed=0, val_fraction=0.2, test_fraction=0.2))
    split_report.check_classes(result)
    assert result.groupby("split")["label"].nunique().eq(4).all()
    assert_no_leak(result)


def test_duplicate_image_across_patients_lands_in_one_split():
    df = make_manifest(30, seed=4)
    a, b = df.iloc[0], df[df["patient_id"] != df.iloc[0]["patient_id"]].iloc[0]
    df.loc[df["path"] == b["path"], "sha256"] = a["sha256"]
    result, info = split.assign(df, SplitConfig())
    owners = result[result["patient_id"].isin([a["patient_id"], b["patient_id"]])]["split"]
    assert owners.nunique() == 1
    assert info["merged_patient_groups"] == 1
    assert_no_leak(result)


def test_too_few_patients_is_a_clear_error():
    with pytest.raises(DataError, match="patient"):
        split.assign(make_manifest(2, seed=0), SplitConfig())
    df = make_manifest(40, seed=0)
    rare = df["patient_id"].isin(df["patient_id"].unique()[:2])
    df.loc[rare, "label"], df.loc[rare, "class_name"] = 2, "COVID"
    with pytest.raises(DataError, match="class 2 has only 2 patient"):
        split.assign(df, SplitConfig())


@pytest.mark.parametrize(("val", "test"), [(0.0, 0.2), (0.2, 1.0), (-0.1, 0.2), (0.5, 0.5)])
def test_bad_fractions_are_config_errors(val, test):
    with pytest.raises(ConfigError, match="split"):
        split.assign(make_manifest(20), SplitConfig(val_fraction=val, test_fraction=test))


def test_leak_check_names_offenders():
    df = pd.DataFrame(
        {"path": ["a", "b"], "sha256": ["h1", "h2"], "patient_id": ["p1", "p1"], "split": ["train", "test"]}
    )
    with pytest.raises(DataError, match=r"p1 \(train\+test\)"):
        split_report.check_no_leak(df)


def kermany_like(seed: int = 0) -> pd.DataFrame:
    """Official train (60 patients), tiny val (2 patients), test (20), 18 without; one train row leaks."""
    df = make_manifest(100, seed=seed, per_patient=(2, 6))
    pids = sorted(df["patient_id"].unique())
    source = pd.Series("train", index=df.index, dtype="string")
    source[df["patient_id"].isin(pids[60:80])] = "test"
    source[df["patient_id"].isin(pids[80:82])] = "val"
    source[df["patient_id"].isin(pids[82:])] = pd.NA  # no official split: normal split
    leak = df.index[df["patient_id"] == pids[70]][0]  # a test patient's image filed under train
    source[leak] = "train"
    return df.assign(source_split=source)


def test_respect_source_split_keeps_test_and_carves_tiny_val(in_tmp):
    df = kermany_like()
    cfg = SplitConfig(seed=3, val_fraction=0.15, test_fraction=0.2, respect_source_split=True)
    out, report = run_stage(in_tmp, df, cfg)
    test = manifest.read(out / "test.csv")
    official_test = df[df["source_split"] == "test"].sort_values("path")
    assert set(test.loc[test["source_split"].notna(), "path"]) == set(official_test["path"])
    info = report["source_split"]
    assert info["respected"] == 1 and info["val_carved"] == 1 and info["test_carved"] == 0
    assert info["dropped_leaking_rows"] == 1
    val = manifest.read(out / "val.csv")
    assert set(val["source_split"].dropna()) <= {"train", "val"}
    official_val = df[df["source_split"] == "val"]
    assert val["source_split"].notna().sum() > len(official_val)  # carved from train, not just the tiny val
    assert report["n_images"]["test"] > len(official_test)  # rows without source_split were split too
    everything = pd.concat([manifest.read(out / f"{n}.csv") for n in ("train", "val", "test")])
    assert len(everything) == len(df) - 1
    assert_no_leak(everything)


def test_respect_source_split_keeps_a_real_val_untouched():
    df = make_manifest(100, seed=8, per_patient=(1, 1))  # MedMNIST-like: one image per "patient"
    source = np.array(["train"] * 70 + ["val"] * 12 + ["test"] * 18)
    df = df.sort_values("path").assign(source_split=pd.array(source, dtype="string"))
    result, info = split.assign(df, SplitConfig(respect_source_split=True))
    for name in ("train", "val", "test"):
        assert set(result.loc[result["split"] == name, "path"]) == set(
            df.loc[df["source_split"] == name, "path"]
        )
    assert info["val_carved"] == 0 and info["dropped_leaking_rows"] == 0


def test_cli_error_is_one_line_and_leaves_no_outputs(in_tmp, capsys):
    manifest.write(make_manifest(2), in_tmp / "validated.csv")
    (in_tmp / "params.yaml").write_text(yaml.safe_dump({"split": {"seed": 1}}))
    code = cli.main(
        ["stage", "split", "-i", "validated=validated.csv", "-o", "splits=splits", "-o", "report=split.json"]
    )
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("medpipe: error:") and "\n" not in err
    assert not (in_tmp / "splits").exists() and not (in_tmp / "split.json").exists()
