"""DICOM files labelled by a table: data.format table over .dcm files (patients from the header's
PatientID when the table has no patient column) and data.format dicom with data.table.file (labels
from the table, pixels, audit extras and data.dicom policies from the DICOM files)."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
import pandas as pd
import pytest
from helpers.dicom_films import PHI, film, ramp
from pydicom.uid import BasicTextSRStorage

from pipeline.config import from_dict
from pipeline.core import pseudonym
from pipeline.core.errors import ConfigError
from pipeline.formats import get
from pipeline.formats.base import RawFile

MRN = ("MRN-TBL-4410", "MRN-TBL-9902")


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv(pseudonym.KEY_ENV, "unit-test-key-0123456789")
    pseudonym._key.cache_clear()
    yield
    pseudonym._key.cache_clear()


def _png(seed: int) -> bytes:
    img = np.random.default_rng(seed).integers(0, 255, (8, 8, 3), dtype=np.uint8)
    return cv2.imencode(".png", img)[1].tobytes()


def _regroup(root: Path, files: dict[str, bytes], frame: pd.DataFrame, fmt: str, **cfg):
    raw = root / "data/raw"
    (raw).mkdir(parents=True, exist_ok=True)
    frame.to_csv(raw / "labels.csv", index=False)
    out = []
    for rel, data in {**files, "labels.csv": (raw / "labels.csv").read_bytes()}.items():
        (raw / rel).parent.mkdir(parents=True, exist_ok=True)
        (raw / rel).write_bytes(data)
        sha = hashlib.sha256(data).hexdigest()
        out.append(RawFile(f"data/raw/{rel}", PurePosixPath(rel), len(data), sha))
    data_cfg = from_dict(
        {"data": {"format": fmt, "table": {"file": "labels.csv", **cfg.pop("table")}, **cfg}}
    ).data
    extracted = root / "data/interim/extracted"
    extracted.mkdir(parents=True, exist_ok=True)
    result = get(fmt).regroup(out, data_cfg, extracted)
    return result, {r["path"]: r for r in result.rows}, {p: why for p, why, _ in result.skipped}


def _assert_no_phi(result, caplog) -> None:
    text = repr(result.rows) + repr(result.notes) + repr(result.skipped) + caplog.text
    assert not [v for v in (*MRN, *PHI.values()) if v in text]


def test_table_format_groups_dcm_rows_by_pseudonymised_header_patient_id(in_tmp, caplog):
    caplog.set_level(logging.DEBUG)
    files = {
        "img/a.dcm": film(ramp(), patient=MRN[0]),
        "img/b.dcm": film(ramp(seed=1), patient=MRN[0]),
        "img/c.dcm": film(ramp(seed=2), patient=MRN[1]),
        "img/d.dcm": film(ramp(seed=3), patient=None),
        "img/e.png": _png(4),
    }
    table = pd.DataFrame({"path": list(files), "y": ["no", "no", "yes", "yes", "no"]})
    result, rows, _ = _regroup(in_tmp, files, table, "table", table={"label_column": "y"})
    patient = {p.split("/")[-1]: r["patient_id"] for p, r in rows.items()}
    assert patient["a.dcm"] == patient["b.dcm"] == pseudonym.pseudonym(MRN[0])
    assert patient["c.dcm"] == pseudonym.pseudonym(MRN[1])
    assert patient["d.dcm"] == "img/d.dcm" and patient["e.png"] == "img/e.png"  # one patient per image
    assert result.notes["table"]["patients"] == "DICOM PatientID pseudonymised, else one per image"
    _assert_no_phi(result, caplog)


def test_dicom_format_with_a_table_takes_labels_from_it_and_audit_fields_from_headers(in_tmp, caplog):
    caplog.set_level(logging.DEBUG)
    files = {
        "flat/1.dcm": film(ramp(), patient=MRN[0], window=(2000, 1000)),
        "flat/2.dcm": film(ramp(seed=1), patient=MRN[1], photometric="MONOCHROME1"),
        "flat/IM0003": film(ramp(seed=2), patient=MRN[1]),
        "flat/fake.dcm": b"<html>403</html>" * 20,
        "flat/report.dcm": film(ramp(), with_pixels=False, sop_class=BasicTextSRStorage),
        "flat/photo.png": _png(5),
        "flat/unlisted.dcm": film(ramp(seed=6)),
    }
    listed = [p for p in files if "unlisted" not in p]
    table = pd.DataFrame({"path": listed, "y": ["A", "B", "B", "A", "A", "B"], "split": ["test"] + [""] * 5})
    result, rows, skipped = _regroup(
        in_tmp,
        files,
        table,
        "dicom",
        table={"label_column": "y", "split_column": "split"},
        dicom={"voi": "dataset"},
    )
    assert result.classes == ["A", "B"]
    good = [r for r in result.rows if r["format_error"] is None]
    assert sorted((r["source_file"] or r["path"]).split("/")[-1] for r in good) == [
        "1.dcm",
        "2.dcm",
        "IM0003",
    ]
    copy = next(
        r for r in good if r["source_file"] == "data/raw/flat/1.dcm"
    )  # voi: dataset strips the window
    assert copy["path"].startswith("data/interim/extracted/") and copy["source_split"] == "test"
    assert copy["patient_id"] == pseudonym.pseudonym(MRN[0]) and copy["class_name"] == "A"
    b = rows["data/raw/flat/2.dcm"]
    assert (b["label"], b["photometric"], b["bits_stored"], b["modality"]) == (1, "MONOCHROME1", 16, "DX")
    assert rows["data/raw/flat/IM0003"]["patient_id"] == b["patient_id"] == pseudonym.pseudonym(MRN[1])
    assert rows["data/raw/flat/fake.dcm"]["format_error"] == "not a DICOM file (no DICM marker at byte 128)"
    assert skipped["data/raw/flat/report.dcm"].startswith("DICOM without pixel data")
    assert skipped["data/raw/flat/photo.png"] == "listed in the table but not DICOM (.png)"
    assert skipped["data/raw/flat/unlisted.dcm"] == "not in the table"
    assert result.notes["dicom"]["labels"] == "table labels.csv"
    _assert_no_phi(result, caplog)


def test_dicom_format_table_patient_column_wins_over_the_header(in_tmp):
    files = {"x/1.dcm": film(ramp(), patient=MRN[0]), "x/2.dcm": film(ramp(seed=1), patient=MRN[0])}
    table = pd.DataFrame({"path": list(files), "y": ["A", "B"], "pt": ["P1", "P2"]})
    _, rows, _ = _regroup(in_tmp, files, table, "dicom", table={"label_column": "y", "patient_column": "pt"})
    assert [r["patient_id"] for r in rows.values()] == [pseudonym.pseudonym("P1"), pseudonym.pseudonym("P2")]


def test_an_empty_patient_cell_of_a_dcm_row_takes_the_header_patient_id(in_tmp, caplog):
    caplog.set_level(logging.DEBUG)
    files = {
        "i/1.dcm": film(ramp(), patient=MRN[0]),
        "i/2.dcm": film(ramp(seed=1), patient=MRN[0]),
        "i/3.dcm": film(ramp(seed=2), patient=None),
        "i/4.png": _png(3),
    }
    table = pd.DataFrame({"path": list(files), "y": ["A", "A", "B", "B"], "mrn": [MRN[0], "", "", ""]})
    result, rows, _ = _regroup(
        in_tmp, files, table, "table", table={"label_column": "y", "patient_column": "mrn"}
    )
    assert (
        rows["data/raw/i/1.dcm"]["patient_id"]
        == rows["data/raw/i/2.dcm"]["patient_id"]
        == pseudonym.pseudonym(MRN[0])
    )  # the cell and the header name one patient
    assert rows["data/raw/i/3.dcm"]["format_error"] == (
        "no patient id in column mrn (row 3) nor a PatientID in the DICOM header"
    )
    assert rows["data/raw/i/4.png"]["format_error"] == "no patient id in column mrn (row 4)"
    _assert_no_phi(result, caplog)


def test_dicom_format_table_keys_are_checked_at_load():
    with pytest.raises(ConfigError, match="needs exactly one of label_column"):
        from_dict({"data": {"format": "dicom", "table": {"file": "labels.csv"}}})
    assert from_dict({"data": {"format": "dicom"}}).data.table.file is None  # folders, no table
