"""At unit level: true quarantine reasons, NA-proof manifests, chunked reads and
hashes, Kermany names, skipped files listed, one intensity window per dataset, EXIF orientation."""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
import pandas as pd
import pytest
from helpers.bad_files import (
    exif_app1,
    gray16_png,
    jpeg,
    jpeg_main_eoi_missing_with_thumbnail,
    pixels,
    png,
    with_exif,
)

from pipeline.config import from_dict
from pipeline.config.table_checks import TABLE_SUFFIXES
from pipeline.core import images, manifest
from pipeline.core.errors import DataError
from pipeline.formats import get
from pipeline.formats.base import IMAGE_SUFFIXES, RawFile
from pipeline.sources.files import DATA_SUFFIXES
from pipeline.validation import checks, headers, intensity
from pipeline.validation.checks import Limits, check_file

LIMITS = Limits(min_side=8, max_side=8192, max_pixels=100_000_000)


def check(tmp_path: Path, data: bytes, name: str = "x.png") -> checks.FileCheck:
    path = tmp_path / name
    path.write_bytes(data)
    return check_file(str(path), hashlib.sha256(data).hexdigest(), LIMITS)


@pytest.mark.parametrize(
    ("data", "warning"),
    [
        (png(1) + b"\x00" * 1000, "1000 bytes after the IEND chunk"),  # more than the old 64-byte window
        (png(2) + b"<html>appended by a careless tool</html>" * 20, "800 bytes after the IEND chunk"),
        (jpeg(3) + b"\x00" * 4096, "4096 bytes after the FFD9 end marker"),
        (jpeg(4) + b"trailing junk" * 10, "130 bytes after the FFD9 end marker"),
    ],
)
def test_a_file_that_decodes_is_kept_with_a_warning_for_trailing_bytes(tmp_path, data, warning):
    result = check(tmp_path, data)
    assert (result.reason, result.warning) == ("", warning)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (png(5)[:-12], "truncated"),  # no IEND
        (png(6)[: len(png(6)) // 2], "truncated"),
        (jpeg(7)[:-2], "truncated"),
        (jpeg_main_eoi_missing_with_thumbnail(8), "truncated"),  # the thumbnail's FFD9 does not count
    ],
)
def test_truncated_files_stay_truncated(tmp_path, data, reason):
    assert check(tmp_path, data).reason == reason


def test_a_clean_file_has_no_warning(tmp_path):
    assert check(tmp_path, png(9)).warning == ""
    assert check(tmp_path, jpeg(10)).warning == ""


def test_files_over_the_read_cap_are_read_whole_and_hashed_in_chunks(tmp_path, monkeypatch):
    """Linux returns at most 2 GiB - 4 KiB per read(); simulated with a 1000-byte cap."""
    data = png(11) + bytes(5000)
    path = tmp_path / "big.png"
    path.write_bytes(data)
    real_read = checks.os.read
    monkeypatch.setattr(checks, "READ_CAP", 1000)
    monkeypatch.setattr(checks.os, "read", lambda fd, n: real_read(fd, min(n, 1000)))
    monkeypatch.setattr(checks, "HASH_CHUNK", 777)
    assert checks.read_file(str(path)) == data
    assert checks.sha256_hex(data) == hashlib.sha256(data).hexdigest()
    result = check_file(str(path), hashlib.sha256(data).hexdigest(), LIMITS)
    assert result.reason == "" and result.warning == "5000 bytes after the IEND chunk"


def test_manifests_never_turn_names_into_na(tmp_path):
    names = ["NA", "None", "null", "NULL", "nan", "NaN", "-nan", "N/A", "#N/A", "<NA>", "1.#IND", "n/a"]
    df = pd.DataFrame(
        {
            "path": [f"data/raw/None/{n}.png" for n in names],
            "sha256": ["a" * 64] * len(names),
            "label": [0] * len(names),
            "class_name": ["None"] * len(names),
            "patient_id": names,
            "format_error": [None] * len(names),
        }
    )
    manifest.write(df, tmp_path / "m.csv")
    back = manifest.read(tmp_path / "m.csv")
    assert back["patient_id"].tolist() == names
    assert back["class_name"].tolist() == ["None"] * len(names)
    assert back["format_error"].isna().all()  # an empty field is still missing


@pytest.mark.parametrize(
    ("name", "patient", "kind"),
    [
        ("person447_virus_921_1.jpeg", "person447", "virus"),
        ("person1_bacteria_1.jpeg", "person1", "bacteria"),
        ("person1946_bacteria_4874.jpeg", "person1946", "bacteria"),
    ],
)
def test_real_kermany_names_parse(name, patient, kind):
    data = from_dict({"data": {"format": "chest_xray", "classes": "three"}}).data
    parsed = get("chest_xray").parse(PurePosixPath(f"chest_xray/train/PNEUMONIA/{name}"), data)
    assert parsed.patient_id == patient and parsed.class_name == kind.upper()


def test_decodable_suffixes_reach_the_adapter():
    assert (
        IMAGE_SUFFIXES | {".npz", ".dcm", ".dicom", *TABLE_SUFFIXES} == DATA_SUFFIXES
    )  # DICOM, arrays, label tables
    assert {".webp", ".gif"} <= IMAGE_SUFFIXES


def raw(path: str, data: bytes = b"") -> RawFile:
    return RawFile(path=f"data/raw/{path}", rel=PurePosixPath(path), bytes=len(data), sha256="0" * 64)


def test_skipped_files_are_listed_with_their_reason(tmp_path):
    data = from_dict({"data": {"format": "imagefolder"}}).data
    files = [raw("a/1.png"), raw("a/2.png"), raw("b/3.png"), raw("b/arrays.npz"), raw("b/notes.npz")]
    result = get("imagefolder").regroup(files, data, tmp_path)
    assert result.classes == ["a", "b"]
    assert result.skipped == [
        ("data/raw/b/arrays.npz", "not an image (.npz)", ""),
        ("data/raw/b/notes.npz", "not an image (.npz)", ""),
    ]
    assert result.ignored == {"not an image (.npz)": 2}


def test_a_class_folder_without_a_readable_image_is_refused(tmp_path):
    data = from_dict({"data": {"format": "imagefolder"}}).data
    files = [raw("a/1.png"), raw("b/2.png"), raw("c/scan.npz")]
    with pytest.raises(DataError) as err:
        get("imagefolder").regroup(files, data, tmp_path)
    assert str(err.value) == (
        "class folder c/ holds no image OpenCV can read, only 1 skipped file(s), e.g. scan.npz (not an image (.npz)); "
        "convert them to PNG or remove the folder (1 such folder(s))"
    )


# --- item 4: one intensity window per dataset; EXIF orientation ---------------------------------


def deep_frame(*images: bytes, tmp_path: Path) -> pd.DataFrame:
    rows = [check(tmp_path, data, f"{i}.png") for i, data in enumerate(images)]
    return pd.DataFrame(rows, columns=list(checks.FileCheck._fields))


def test_12_bit_data_in_16_bit_pngs_gets_one_observed_window(tmp_path):
    a = pixels(1, (64, 64), np.uint16, high=4095)
    b = pixels(2, (16, 16), np.uint16, high=200)  # a dark image: the old rule left it unscaled
    a[0, 0] = b[0, 0] = 150
    a[0, 1] = 0  # the darkest sample of the dataset
    window = intensity.dataset_window(deep_frame(gray16_png(a), gray16_png(b), tmp_path=tmp_path))
    assert window == {"window": [0, int(a.max())], "source": "observed", "bits": 12, "n_images_over_8_bit": 2}
    lo_hi = tuple(window["window"])
    out_a = images.decode(gray16_png(a), 1, lo_hi)[..., 0]
    out_b = images.decode(gray16_png(b), 1, lo_hi)[..., 0]
    assert len(np.unique(out_a)) > 200  # grey levels kept (>> 8 left 16)
    assert out_a[0, 0] == out_b[0, 0] == round(150 * 255 / int(a.max()))  # one mapping for both


def test_png_sbit_gives_the_window(tmp_path):
    a = pixels(3, (16, 16), np.uint16, high=1000)
    frame = deep_frame(gray16_png(a, sbit=12), gray16_png(a + 7, sbit=12), tmp_path=tmp_path)
    assert intensity.dataset_window(frame)["window"] == [0, 4095]
    assert intensity.dataset_window(frame)["source"] == "declared-bits"


def test_8_bit_data_has_no_window(tmp_path):
    frame = deep_frame(png(1), png(2), tmp_path=tmp_path)
    assert intensity.dataset_window(frame) == {
        "window": None,
        "source": "8-bit",
        "bits": 8,
        "n_images_over_8_bit": 0,
    }


def test_without_a_window_16_bit_images_are_never_scaled_per_image():
    dark = np.full((4, 4), 200, np.uint16)
    bright = dark.copy()
    bright[0, 0] = 300  # one pixel over 255 used to switch this image to >> 8
    assert images.to_uint8(dark)[1, 1] == images.to_uint8(bright)[1, 1]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_like_opencv_color_decoding(tmp_path, orientation):
    img = pixels(4, (24, 40, 3))
    data = with_exif(jpeg_from(img), orientation)
    assert headers.exif_orientation(data) == orientation
    got = images.decode_raw(data)
    expected = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)  # applies EXIF
    np.testing.assert_array_equal(got, expected)
    assert got.shape[:2] == ((40, 24) if orientation >= 5 else (24, 40))
    result = check(tmp_path, data, "x.jpg")
    assert (result.height, result.width) == got.shape[:2]
    assert result.warning == ("" if orientation == 1 else f"EXIF orientation {orientation} applied")


def jpeg_from(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return buf.tobytes()


def test_exif_parser_survives_garbage():
    assert headers.exif_orientation(b"\xff\xd8" + exif_app1(6)[:12]) is None
    assert headers.exif_orientation(jpeg(1)) is None
