"""data.format: dicom: the adapter (class folders, pseudonymised PatientID, audit extras, bad inputs,
multi-frame and VOI policies), ingest's DICOM names, and validate's checks of DICOM files."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
import pytest
from helpers.dicom_films import PHI, film, ramp
from pydicom.uid import BasicTextSRStorage, MediaStorageDirectoryStorage

from pipeline.config import from_dict
from pipeline.core import dicom, pseudonym
from pipeline.formats import get
from pipeline.formats.base import RawFile
from pipeline.sources.files import is_data_file
from pipeline.validation import intensity
from pipeline.validation.checks import Limits, check_file

LIMITS = Limits(min_side=8, max_side=8192, max_pixels=100_000_000)


def _write(root: Path, files: dict[str, bytes]) -> list[RawFile]:
    out = []
    for rel, data in files.items():
        path = root / "data/raw" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        sha = hashlib.sha256(data).hexdigest()
        out.append(RawFile(f"data/raw/{rel}", PurePosixPath(rel), len(data), sha))
    return out


def _regroup(root: Path, files: dict[str, bytes], **dicom_cfg):
    data = from_dict({"data": {"format": "dicom", "dicom": dicom_cfg}}).data
    extracted = root / "data/interim/extracted"
    extracted.mkdir(parents=True, exist_ok=True)
    result = get("dicom").regroup(_write(root, files), data, extracted)
    return result, {r["path"]: r for r in result.rows}


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv(pseudonym.KEY_ENV, "unit-test-key-0123456789")
    pseudonym._key.cache_clear()
    yield
    pseudonym._key.cache_clear()


def test_classes_from_folders_patient_pseudonymised_and_no_phi_in_rows(in_tmp):
    result, rows = _regroup(
        in_tmp,
        {
            "cxr/NORMAL/a.dcm": film(ramp(), patient="MRN-1"),
            "cxr/PNEUMONIA/sub/IM0001": film(ramp(seed=1), patient="MRN-2", photometric="MONOCHROME1"),
            "cxr/PNEUMONIA/1.2.840.113619.2.55.3": film(ramp(seed=2), patient="MRN-2"),
        },
    )
    assert result.classes == ["NORMAL", "PNEUMONIA"] and result.positive == "PNEUMONIA"
    row = rows["data/raw/cxr/NORMAL/a.dcm"]
    assert row["patient_id"] == pseudonym.pseudonym("MRN-1") and row["label"] == 0
    assert row["modality"] == "DX" and row["bits_stored"] == 16 and row["frames"] == 1
    assert len(result.rows) == 3 and all(r["format_error"] is None for r in result.rows)
    text = repr(result.rows) + repr(result.notes)
    assert not any(v in text for v in ("MRN-1", "MRN-2", *PHI.values()))


def test_bad_inputs_become_error_rows_or_skips_with_true_reasons(in_tmp, caplog):
    caplog.set_level(logging.WARNING)
    result, rows = _regroup(
        in_tmp,
        {
            "A/good.dcm": film(ramp()),
            "A/mono1.dcm": film(ramp(), photometric="MONOCHROME1"),
            "A/fake.dcm": b"<html>403 Forbidden</html>" * 10,
            "A/nopatient.dcm": film(ramp(), patient=None),
            "A/report.dcm": film(ramp(), with_pixels=False, sop_class=BasicTextSRStorage),
            "A/DICOMDIR": film(ramp(), with_pixels=False, sop_class=MediaStorageDirectoryStorage),
            "A/IM0002": b"not dicom at all" * 20,
            "B/x.dcm": film(ramp()),
        },
    )
    errors = {p: r["format_error"] for p, r in rows.items() if r["format_error"]}
    assert errors == {
        "data/raw/A/fake.dcm": "not a DICOM file (no DICM marker at byte 128)",
        "data/raw/A/nopatient.dcm": "no PatientID in the header",
    }
    skipped = {path: reason for path, reason, _detail in result.skipped}
    assert skipped["data/raw/A/report.dcm"] == f"DICOM without pixel data (SOP class {BasicTextSRStorage})"
    assert skipped["data/raw/A/DICOMDIR"] == "DICOMDIR (a media index, no image)"
    assert skipped["data/raw/A/IM0002"] == "no suffix and not DICOM"
    mixed = [r.getMessage() for r in caplog.records if "mixed photometric" in r.getMessage()]
    assert mixed == [
        "mixed photometric interpretations kept (inverted where MONOCHROME1): "
        "{'A': {'MONOCHROME2': 1, 'MONOCHROME1': 1}}"
    ]


@pytest.mark.parametrize("policy", ["first", "each", "refuse"])
def test_multi_frame_policy(in_tmp, policy):
    frames = np.stack([ramp(seed=i) for i in range(3)])
    result, rows = _regroup(
        in_tmp, {"A/multi.dcm": film(frames, syntax="rle"), "B/one.dcm": film(ramp())}, frames=policy
    )
    multi = [
        r for r in result.rows if "multi.dcm" in r["path"] or r.get("source_file") == "data/raw/A/multi.dcm"
    ]
    if policy == "refuse":
        assert [r["format_error"] for r in multi] == [
            "multi-frame DICOM (3 frames) and data.dicom.frames is refuse"
        ]
    elif policy == "first":
        assert len(multi) == 1 and multi[0]["frame"] == 0 and multi[0]["frames"] == 3
    else:
        assert [r["frame"] for r in multi] == [0, 1, 2] and {r["frames"] for r in multi} == {1}
        for r in multi:
            data = Path(r["path"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == r["sha256"] and dicom.read_header(data)["frames"] == 1
            assert np.array_equal(dicom.decode_dicom(data), frames[r["frame"]])


def test_voi_dataset_writes_copies_without_the_window(in_tmp):
    data = film(ramp(top=4095), bits_stored=12, window=(1000, 200))
    _, rows = _regroup(in_tmp, {"A/w.dcm": data, "B/plain.dcm": film(ramp())}, voi="dataset")
    copy = next(r for r in rows.values() if r.get("source_file") == "data/raw/A/w.dcm")
    assert copy["path"].startswith("data/interim/extracted/A/")
    assert "data/raw/B/plain.dcm" in rows  # nothing to strip: the raw file itself
    assert np.array_equal(dicom.decode_dicom(Path(copy["path"]).read_bytes()), ramp(top=4095))


def test_ingest_keeps_dicom_and_pacs_names_only():
    keep = ["a/x.dcm", "a/x.DICOM", "a/IM0001", "a/1.2.840.113619.2.55.3", "a/DICOMDIR"]
    drop = ["a/README", "a/LICENSE", "a/notes.txt", "a/.IM0001", "a/1.2."]
    assert [r for r in keep if not is_data_file(r)] == [] and [r for r in drop if is_data_file(r)] == []


def test_validate_reads_dicom_values_for_the_dataset_window(tmp_path):
    good = tmp_path / "g.dcm"
    good.write_bytes(film(ramp(top=4000), bits_stored=12))
    check = check_file(str(good), None, LIMITS)
    assert (check.reason, check.dtype, check.significant_bits) == ("", "uint16", 12)
    frame = {"dtype": [check.dtype], "low": [check.low], "high": [check.high], "significant_bits": [12]}
    assert intensity.dataset_window(pd.DataFrame(frame))["window"] == [0, 4095]
    broken = tmp_path / "b.dcm"
    broken.write_bytes(film(ramp(), bits_stored=12)[:-300])
    bad = check_file(str(broken), None, LIMITS)
    assert bad.reason == "undecodable" and "DICOM pixel data undecodable" in bad.detail


def test_medpipe_predict_finds_dicom_files_in_a_folder(tmp_path):
    from pipeline.serving.predictor import image_files

    (tmp_path / "a.dcm").write_bytes(film(ramp()))
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in image_files([tmp_path])] == ["a.dcm"]


def test_imagefolder_class_of_dicom_files_points_at_the_dicom_format(tmp_path):
    from pipeline.core.errors import DataError

    data = from_dict({"data": {"format": "imagefolder"}}).data
    files = [RawFile(f"data/raw/{r}", PurePosixPath(r), 1, "s") for r in ("a/1.png", "b/2.png", "c/x.dcm")]
    with pytest.raises(DataError, match=r"e.g. x.dcm \(not an image \(.dcm\)\); set data.format: dicom"):
        get("imagefolder").regroup(files, data, tmp_path)


def test_a_float_tiff_stays_unsupported_while_dicom_floats_pass(tmp_path):
    import cv2

    tiff = tmp_path / "f.tiff"
    cv2.imwrite(str(tiff), np.full((16, 16), 0.5, np.float32))
    assert check_file(str(tiff), None, LIMITS).reason == "unsupported-dtype"
    ct = tmp_path / "ct.dcm"
    stored = (ramp(top=2000).astype(np.int16) - 1000).astype(np.int16)
    ct.write_bytes(film(stored, bits_stored=12, rescale=(0.5, -1024.0)))
    check = check_file(str(ct), None, LIMITS)
    assert (check.reason, check.dtype) == ("", "float32") and check.low < -1024 < check.high


def test_mixed_declared_bit_depths_share_one_window_with_one_warning(caplog):
    caplog.set_level(logging.WARNING)
    frame = pd.DataFrame(
        {"dtype": ["uint16", "uint16"], "low": [0, 0], "high": [4095, 65535], "significant_bits": [12, 16]}
    )
    assert intensity.dataset_window(frame)["window"] == [0, 65535]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and lines[0].startswith("images declare 2 bit depths (12, 16) and share")
