"""data.format table: a label table beside tiny images through the regroup stage; every bad row has
one counted outcome with a true reason, and no patient cell reaches an output, a log or a message."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
import pandas as pd
import pytest

from pipeline.config import from_dict
from pipeline.core import manifest
from pipeline.core import pseudonym as pseudonym_module
from pipeline.core.errors import ConfigError, DataError
from pipeline.formats import get
from pipeline.formats.base import RawFile
from pipeline.stages import regroup

INPUTS = {"raw": Path("data/raw"), "manifest": Path("data/manifests/raw.csv")}
OUTPUTS = {
    "manifest": Path("data/interim/manifest.csv"),
    "labels": Path("data/interim/labels.json"),
    "class_view": Path("data/interim/class_view"),
    "extracted": Path("data/interim/extracted"),
    "skipped": Path("data/interim/skipped.csv"),
}
KEY = "unit-test-key-0123456789abcdef"
PHI = "MRN-PHI-7731"


@pytest.fixture(autouse=True)
def key(monkeypatch):
    monkeypatch.setenv(pseudonym_module.KEY_ENV, KEY)
    pseudonym_module._key.cache_clear()
    yield
    pseudonym_module._key.cache_clear()


def ingest(images: list[str], table: pd.DataFrame | None = None, name: str = "labels.csv") -> None:
    """Tiny distinct PNGs under data/raw, the table beside them, and the ingest manifest."""
    raw = INPUTS["raw"]
    for i, rel in enumerate(images):
        (raw / rel).parent.mkdir(parents=True, exist_ok=True)
        img = np.random.default_rng(i).integers(0, 255, (8, 8, 3), dtype=np.uint8)
        (raw / rel).write_bytes(cv2.imencode(".png", img)[1].tobytes())
    if table is not None:
        path = raw / name
        if name.endswith(".parquet"):
            table.to_parquet(path)
        else:
            table.to_csv(path, sep="\t" if name.endswith(".tsv") else ",", index=False)
    files = sorted(p for p in raw.rglob("*") if p.is_file())
    rows = [
        {
            "path": p.as_posix(),
            "bytes": p.stat().st_size,
            "sha256": hashlib.sha256(p.read_bytes()).hexdigest(),
        }
        for p in files
    ]
    manifest.write(pd.DataFrame(rows), INPUTS["manifest"])


def run(**table) -> dict:
    cfg = from_dict({"data": {"format": "table", "table": {"file": "labels.csv", **table}}})
    return regroup.run(cfg, dict(INPUTS), dict(OUTPUTS))


def outputs() -> tuple[pd.DataFrame, pd.DataFrame]:
    df = manifest.read(OUTPUTS["manifest"], manifest.CANONICAL_COLUMNS + ["format_error"])
    return df, manifest.read(OUTPUTS["skipped"], ["path", "reason", "detail"]).fillna("")


def test_label_column_every_bad_row_counted_with_its_reason_and_no_patient_cell_written(in_tmp, caplog):
    good = [f"img/{c}{i}.png" for c in ("a", "b") for i in range(3)]
    ingest([*good, "img/dup.png", "img/two.png", "img/nolabel.png", "img/nopatient.png", "img/extra.png"])
    rows = [(p, p[4], f"{PHI}-{i // 2}") for i, p in enumerate(good)]
    rows += [
        ("img/dup.png", "a", f"{PHI}-9"),
        ("./img/dup.png", "a", f"{PHI}-9"),  # the same path written another way: a repeated row
        ("img/two.png", "a", f"{PHI}-8"),
        ("img/two.png", "b", f"{PHI}-8"),
        ("img/nolabel.png", "", f"{PHI}-7"),
        ("img/nopatient.png", "a", ""),
        ("img/missing.png", "a", f"{PHI}-6"),
        ("../outside.png", "a", f"{PHI}-5"),
        ("/etc/passwd", "b", f"{PHI}-4"),
    ]
    table = pd.DataFrame(rows, columns=["file", "finding", "mrn"]).assign(name="Doe^Jane PHI")
    ingest([], table)
    summary = run(path_column="file", label_column="finding", patient_column="mrn")
    df, skipped = outputs()
    errors = df[df["format_error"].notna()].set_index("path")["format_error"].to_dict()
    assert errors == {
        "data/raw/img/nopatient.png": "no patient id in column mrn (row 12)",
        "data/raw/img/two.png": "the table gives this file 2 labels: a (row 9), b (row 10)",
    }
    reasons = {(p, r, d) for p, r, d in skipped.itertuples(index=False)}
    assert reasons == {
        (
            "./img/dup.png",
            "duplicate table row (same path and label)",
            "labels.csv row 8; row 7 labels the file",
        ),
        ("data/raw/img/nolabel.png", "label empty in the table", "labels.csv row 11"),
        ("img/missing.png", "listed in the table, no such file in data/raw", "labels.csv row 13"),
        ("../outside.png", "path leaves data.source (../)", "labels.csv row 14"),
        ("/etc/passwd", "path leaves data.source (absolute)", "labels.csv row 15"),
        ("data/raw/img/extra.png", "not in the table", ""),
        ("data/raw/labels.csv", "the label table (data.table.file)", ""),
    }
    images = df[df["format_error"].isna()]
    assert summary["images"] == 7 and summary["patients"] == 4 and summary["format_errors"] == 2
    assert (
        summary["table"]["rows"] == 15 and summary["table"]["pseudonym_key_id"] == pseudonym_module.key_id()
    )
    expected = pseudonym_module.pseudonym(f"{PHI}-0", KEY.encode())
    assert images.loc[images["path"] == "data/raw/img/a0.png", "patient_id"].item() == expected
    assert json.loads(OUTPUTS["labels"].read_text()) == {
        "format": "table",
        "classes": ["a", "b"],
        "positive": "b",
    }
    written = (
        " ".join(p.read_text() for p in Path("data/interim").glob("*.*")) + caplog.text + json.dumps(summary)
    )
    assert "PHI" not in written


def test_class_columns_one_vs_rest_tsv(in_tmp):
    images = [f"x/{i}.png" for i in range(9)]
    ingest(images)
    cells = ["1,0", "0,1", "1,", "0.0,1.0", "1,1", "0,0", ",", "-1,1", "yes,0"]
    rows = [(p, *c.split(",")) for p, c in zip(images, cells, strict=True)]
    ingest([], pd.DataFrame(rows, columns=["path", "Pneumonia", "No Finding"]), "labels.tsv")
    cfg = {"file": "labels.tsv", "class_columns": ["Pneumonia", "No Finding"]}
    regroup.run(from_dict({"data": {"format": "table", "table": cfg}}), dict(INPUTS), dict(OUTPUTS))
    df, skipped = outputs()
    got = dict(zip(df["path"].str[9:], df["class_name"].fillna(df["format_error"]), strict=True))
    assert got == {
        "x/0.png": "Pneumonia",
        "x/1.png": "No Finding",
        "x/2.png": "Pneumonia",
        "x/3.png": "No Finding",
        "x/8.png": "Pneumonia is 'yes' in row 9; expected 1, 0, -1 or blank",
    }
    assert json.loads(OUTPUTS["labels"].read_text())["classes"] == ["No Finding", "Pneumonia"]
    assert dict(zip(skipped["path"], skipped["reason"], strict=True)) == {
        "data/raw/x/4.png": "several class columns are 1 (multi-label row)",
        "data/raw/x/5.png": "label empty in the table",
        "data/raw/x/6.png": "label empty in the table",
        "data/raw/x/7.png": "uncertain label (-1) in a class column",
        "data/raw/labels.tsv": "the label table (data.table.file)",
    }
    # no patient column: one patient per image (its path below the source)
    assert df["patient_id"].dropna().tolist() == ["x/0.png", "x/1.png", "x/2.png", "x/3.png"]


def test_parquet_official_split_synonyms_and_a_bad_split_value(in_tmp):
    images = [f"{i}.png" for i in range(5)]
    ingest(images)
    table = pd.DataFrame(
        {
            "path": [*images, "labels.parquet"],  # the last row lists the table itself
            "y": [0, 1, 0, 1, 0, 1],
            "fold": ["Training", "valid", "TEST", "", "later", ""],
        }
    )
    ingest([], table, "labels.parquet")
    cfg = {"file": "labels.parquet", "label_column": "y", "split_column": "fold"}
    regroup.run(from_dict({"data": {"format": "table", "table": cfg}}), dict(INPUTS), dict(OUTPUTS))
    df, skipped = outputs()
    assert df["source_split"].fillna("-").tolist() == ["train", "val", "test", "-", "-"]
    assert df["class_name"].fillna("-").tolist() == ["0", "1", "0", "1", "-"]
    assert df["format_error"].dropna().tolist() == [
        "fold is 'later' in row 5; expected train, val, test or a synonym"
    ]
    assert skipped.values.tolist() == [
        [
            "data/raw/labels.parquet",
            "the label table (data.table.file)",
            "also listed in labels.parquet row 6",
        ]
    ]


def test_missing_table_and_missing_column_are_one_line_errors_quoting_no_cell(in_tmp):
    ingest(["a.png"])
    with pytest.raises(
        DataError, match=r"label table labels.csv \(data.table.file\) is not among the ingested"
    ):
        run(label_column="y")
    ingest([], pd.DataFrame({"path": ["a.png"], "y": ["c"], "mrn": [PHI]}))
    with pytest.raises(
        DataError, match="has no column 'patient'; its columns are: 'path', 'y', 'mrn'"
    ) as err:
        run(label_column="y", patient_column="patient")
    assert PHI not in str(err.value)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({}, "data.format is table but data.table.file is not set"),
        ({"file": "../labels.csv", "label_column": "y"}, "must be a path relative to data.source, inside it"),
        ({"file": "labels.xlsx", "label_column": "y"}, "is not a table; accepted: .csv, .tsv, .parquet"),
        ({"file": "l.csv"}, "needs exactly one of label_column"),
        (
            {"file": "l.csv", "label_column": "y", "class_columns": ["a", "b"]},
            "needs exactly one of label_column",
        ),
        ({"file": "l.csv", "class_columns": ["a"]}, "class_columns needs at least 2 columns"),
        ({"file": "l.csv", "label_column": "y", "patient_column": "y"}, "uses column 'y' for two things"),
    ],
)
def test_table_keys_are_checked_at_load(table, message):
    with pytest.raises(ConfigError, match=message):
        from_dict({"data": {"format": "table", "table": table}})


def test_imagefolder_skips_a_metadata_table_in_its_own_folder(tmp_path):
    """Ingest now keeps tables: a `meta/info.csv` beside class folders is skipped, not a class."""
    rels = ["a/1.png", "b/2.png", "meta/info.csv"]
    files = [RawFile(f"data/raw/{r}", PurePosixPath(r), 1, "0" * 64) for r in rels]
    result = get("imagefolder").regroup(files, from_dict({"data": {"format": "imagefolder"}}).data, tmp_path)
    assert result.classes == ["a", "b"]
    assert result.skipped == [("data/raw/meta/info.csv", "not an image (.csv)", "")]
