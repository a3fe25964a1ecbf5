"""The regroup stage on tiny synthetic trees (files written with OpenCV) and the shared samples."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from pipeline.cli import commands as cli
from pipeline.config import from_dict
from pipeline.core import manifest
from pipeline.core.errors import ConfigError, DataError
from pipeline.stages import regroup

INPUTS = {"raw": Path("data/raw"), "manifest": Path("data/manifests/raw.csv")}
OUTPUTS = {
    "manifest": Path("data/interim/manifest.csv"),
    "labels": Path("data/interim/labels.json"),
    "class_view": Path("data/interim/class_view"),
    "extracted": Path("data/interim/extracted"),
}
IDC_TREE = [
    "10253/0/10253_idx5_x1_y1_class0.png",
    "10253/1/10253_idx5_x51_y1_class1.png",
    "8863/0/8863_idx5_x1_y51_class0.png",
    "8863/0/8863_idx5_x51_y51_class1.png",  # folder 0 but class1 in the name
    "8863/1/readme.txt",
]


def tiny_image(suffix: str, seed: int) -> bytes:
    img = np.random.default_rng(seed).integers(0, 255, (6, 6, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(suffix, img)
    assert ok
    return buf.tobytes()


def ingest(files: list[str], copies_from: Path | None = None) -> None:
    """Write files under data/raw (or copy a sample tree) and the ingest manifest, like ingest does."""
    raw = INPUTS["raw"]
    if copies_from is not None:
        shutil.copytree(copies_from, raw)
    for i, rel in enumerate(files):
        path = raw / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        suffix = path.suffix.lower()
        path.write_bytes(tiny_image(suffix, i) if suffix in (".png", ".jpeg", ".jpg") else b"notes\n")
    rows = [
        {
            "path": p.as_posix(),
            "bytes": p.stat().st_size,
            "sha256": hashlib.sha256(p.read_bytes()).hexdigest(),
        }
        for p in sorted(raw.rglob("*"))
        if p.is_file()
    ]
    manifest.write(pd.DataFrame(rows), INPUTS["manifest"])


def run(fmt: str, **data) -> dict:
    return regroup.run(from_dict({"data": {"format": fmt, **data}}), dict(INPUTS), dict(OUTPUTS))


def test_idc_outputs_manifest_labels_view_and_error_rows(in_tmp):
    ingest(IDC_TREE)
    summary = run("idc")
    df = manifest.read(OUTPUTS["manifest"], manifest.CANONICAL_COLUMNS + ["format_error"])
    assert (summary["images"], summary["format_errors"], summary["patients"]) == (3, 1, 2)
    assert summary["ignored"] == {"not an image (.txt)": 1}
    good = df[df["format_error"].isna()].set_index("path")
    row = good.loc["data/raw/10253/1/10253_idx5_x51_y1_class1.png"]
    assert (row["label"], row["class_name"], row["patient_id"], row["x"], row["y"]) == (
        1,
        "idc",
        "10253",
        51,
        1,
    )
    bad = df[df["format_error"].notna()]
    assert bad["path"].tolist() == ["data/raw/8863/0/8863_idx5_x51_y51_class1.png"]
    assert bad["label"].isna().all() and bad["class_name"].isna().all()
    labels = json.loads(OUTPUTS["labels"].read_text())
    assert labels == {"format": "idc", "classes": ["non_idc", "idc"], "positive": "idc"}
    links = sorted(p for p in OUTPUTS["class_view"].rglob("*") if p.is_symlink())
    assert len(links) == 3
    for link in links:
        assert not os.path.isabs(os.readlink(link))
        assert os.path.samefile(link, good.index[good.index.str.endswith(link.name)][0])
        assert link.parent.name == good.loc[good.index.str.endswith(link.name), "class_name"].iloc[0]
    # a path format unpacks nothing: only the note that keeps DVC from warning about an empty out
    assert [p.name for p in OUTPUTS["extracted"].iterdir()] == ["README.txt"]


def test_doubled_kaggle_tree_and_macos_junk_are_not_counted_twice(in_tmp):
    tree = ["chest_xray/train/NORMAL/IM-0115-0001.jpeg", "chest_xray/test/PNEUMONIA/person1_virus_6.jpeg"]
    ingest(tree)
    for rel in tree:  # the Kaggle zip repeats the tree under chest_xray/chest_xray/ and __MACOSX/
        for copy in (f"chest_xray/{rel}", f"__MACOSX/{Path(rel).parent}/._{Path(rel).name}"):
            (INPUTS["raw"] / copy).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(INPUTS["raw"] / rel, INPUTS["raw"] / copy)
    ingest([])
    summary = run("chest_xray")
    df = manifest.read(OUTPUTS["manifest"])
    assert summary["exact_copies_dropped"] == 2 and summary["ignored"] == {"hidden or OS junk file": 2}
    assert sorted(df["path"]) == [f"data/raw/{r}" for r in sorted(tree)]
    assert df.set_index("patient_id")["source_split"].to_dict() == {"IM-0115": "train", "person1": "test"}


def test_positive_class_override_and_unknown_positive(in_tmp):
    ingest(IDC_TREE)
    assert run("idc", positive_class="non_idc")["positive"] == "non_idc"
    assert json.loads(OUTPUTS["labels"].read_text())["positive"] == "non_idc"
    with pytest.raises(
        ConfigError,
        match=r"data.positive_class 'cancer' is not a class of format idc; classes are: non_idc, idc",
    ):
        run("idc", positive_class="cancer")


def test_wrong_format_is_one_line_error_and_leaves_no_outputs(in_tmp, capsys):
    ingest(IDC_TREE)
    params = in_tmp / "params.yaml"
    params.write_text("data:\n  format: tb\n")
    argv = ["stage", "regroup", "--params", str(params)]
    argv += [a for k, v in INPUTS.items() for a in ("-i", f"{k}={v}")]
    argv += [a for k, v in OUTPUTS.items() for a in ("-o", f"{k}={v}")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]  # tqdm may draw above it
    assert "Traceback" not in err and last.startswith("medpipe: error: no tb images found under data/raw;")
    assert "is data.format right? expected e.g. data/raw/MontgomerySet/CXR_png/MCUCXR_0001_0.png" in last
    assert not any(p.exists() for p in OUTPUTS.values())


def test_failed_rerun_keeps_previous_outputs_and_rerun_replaces_stale_links(in_tmp):
    ingest(IDC_TREE)
    run("idc")
    before = OUTPUTS["manifest"].read_text()
    stale = OUTPUTS["class_view"] / "idc" / "stale.png"
    stale.symlink_to("nowhere")
    with pytest.raises(DataError):
        run("breakhis")
    assert OUTPUTS["manifest"].read_text() == before and stale.is_symlink()
    run("idc")
    assert not stale.is_symlink() and len(list(OUTPUTS["class_view"].rglob("*.png"))) == 3


def test_imagefolder_regex_miss_names_an_example_file(in_tmp):
    ingest(["cats/p1_a.png", "dogs/img.png"])
    with pytest.raises(DataError, match="e.g. 'img.png'"):
        run("imagefolder", patient_regex=r"(?P<patient>p\d+)_")
    summary = run("imagefolder")
    assert summary["per_class"] == {"cats": 1, "dogs": 1} and summary["patients"] == 2


def test_same_file_name_twice_in_one_class_gets_distinct_links(in_tmp):
    ingest(["cats/home/1.png", "cats/street/1.png", "dogs/1.png"])
    run("imagefolder")
    links = sorted(p.name for p in (OUTPUTS["class_view"] / "cats").iterdir())
    assert links == ["1.png", "data__raw__cats__street__1.png"]
    assert all(p.resolve().is_file() for p in OUTPUTS["class_view"].rglob("*.png"))


def test_medmnist_needs_exactly_one_npz(in_tmp):
    ingest(["readme.txt"])
    with pytest.raises(
        DataError, match=r"no medmnist images found under data/raw.*e.g. data/raw/pneumoniamnist.npz"
    ):
        run("medmnist")
    for name in ("a.npz", "b.npz"):
        np.savez(
            INPUTS["raw"] / name, train_images=np.zeros((2, 4, 4), np.uint8), train_labels=np.zeros((2, 1))
        )
    ingest([])
    with pytest.raises(DataError, match="found 2 .npz files"):
        run("medmnist")


def image_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.suffix.lower() in (".png", ".jpeg", ".jpg")]


@pytest.mark.parametrize("fmt", ["breakhis", "chest_xray", "tb"])
def test_shared_samples_regroup_without_errors(fmt, samples_dir, in_tmp):
    source = samples_dir / fmt
    ingest([], copies_from=source)
    summary = run(fmt)
    df = manifest.read(OUTPUTS["manifest"])
    assert summary["images"] == len(df) == len(image_files(source)) and summary["format_errors"] == 0
    assert df["patient_id"].notna().all() and df["label"].notna().all()
    for class_name, group in df.groupby("class_name"):
        assert len(list((OUTPUTS["class_view"] / class_name).iterdir())) == len(group)
    if fmt == "breakhis":  # patient = slide id from the folder SOB_<B|M>_<T>_<slide>
        slides = {p.parent.parent.name.split("_", 3)[3] for p in image_files(source)}
        assert set(df["patient_id"]) == slides
    if fmt == "chest_xray":
        assert summary["per_class"]["NORMAL"] == len(image_files(source / "NORMAL"))


def test_shared_chest_xray_sample_three_classes(samples_dir, in_tmp):
    ingest([], copies_from=samples_dir / "chest_xray")
    summary = run("chest_xray", classes="three")
    names = [p.name for p in image_files(samples_dir / "chest_xray" / "PNEUMONIA")]
    assert summary["per_class"]["VIRUS"] == sum("_virus_" in n for n in names)
    assert summary["per_class"]["BACTERIA"] == sum("_bacteria_" in n for n in names)
    assert json.loads(OUTPUTS["labels"].read_text())["positive"] is None


@pytest.mark.parametrize(
    ("flag", "positive"), [("breastmnist", "malignant"), ("pneumoniamnist", "pneumonia")]
)
def test_medmnist_npz_is_extracted_losslessly(flag, positive, medmnist_dir, in_tmp):
    npz = np.load(medmnist_dir / f"{flag}.npz")
    ingest([], copies_from=medmnist_dir)
    (INPUTS["raw"] / ("pneumoniamnist.npz" if flag == "breastmnist" else "breastmnist.npz")).unlink()
    ingest([])
    summary = run("medmnist")
    df = manifest.read(OUTPUTS["manifest"])
    sizes = {s: len(npz[f"{s}_labels"]) for s in ("train", "val", "test")}
    assert len(df) == summary["images"] == sum(sizes.values())
    assert df["source_split"].value_counts().to_dict() == sizes
    labels = json.loads(OUTPUTS["labels"].read_text())
    assert labels["positive"] == positive
    # MedMNIST INFO: breastmnist 0 = malignant (the positive class is label 0), pneumoniamnist 1 = pneumonia
    assert labels["classes"].index(positive) == (0 if flag == "breastmnist" else 1)
    for row in df.sample(20, random_state=0).itertuples():
        split, index = row.patient_id.split("_")
        assert row.path.startswith("data/interim/extracted/") and row.source_split == split
        data = Path(row.path).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (row.bytes, row.sha256)
        img = cv2.imread(row.path, cv2.IMREAD_UNCHANGED)
        assert np.array_equal(img, npz[f"{split}_images"][int(index)])
        assert row.label == int(npz[f"{split}_labels"][int(index), 0])
        assert labels["classes"][row.label] == row.class_name
    assert len(list(OUTPUTS["class_view"].rglob("*.png"))) == len(df)
