"""Bad-input suite for the validate stage: every case asserts the EXACT outcome and that no valid image is lost.

Each FILE case adds one row to 12 valid 50x50 RGB PNGs and asserts its exact quarantine reason
(or, for "valid", that it survives) AND that all 12 valid images are in validated.csv.

Quarantined (reason):
  1 zero-byte file (zero-byte)                    26 label 2 with 2 classes (label-not-in-set)
  2 PNG cut in half (truncated)                   27 label -1 (label-not-in-set)
  3 PNG missing only its IEND chunk (truncated)   28 empty label (label-not-in-set)
  4 JPEG cut in half (truncated)                  29 class_name not matching its label (label-not-in-set)
  5 JPEG missing only FFD9 (truncated)            30 unknown class_name (label-not-in-set)
  6 random bytes named .png (not-an-image)        31 empty patient_id (missing-patient)
  7 text file named .png (not-an-image)           32 whitespace patient_id (missing-patient)
  8 HTML error page named .jpg (not-an-image)     33 regroup format_error set (bad-name)
  9 PDF named .png (not-an-image)                 34 path is a directory (unreadable)
 10 zip archive named .png (not-an-image)         35 missing file (unreadable)
 11 PNG signature + garbage + IEND (undecodable)  36 file vanished after ingest (unreadable)
 12 PNG with corrupted IDAT (undecodable)         37 dangling symlink (unreadable)
 13 JPEG signature + garbage + FFD9 (undecodable) 38 chmod 000, skipped as root (unreadable)
 14 PNG IHDR 0x0 (undecodable)                    39 file replaced after ingest (sha256-mismatch)
 15 PNG bomb header 100000^2 (too-large)          40 one byte appended after ingest (sha256-mismatch)
 16 PNG 20000^2 > max_pixels (too-large)          41 byte-identical copy of a valid image (duplicate)
 17 PNG 9000x10 > max_side (too-large)            42 same copy, other patient and class (duplicate)
 18 JPEG SOF bomb 60000^2 (too-large)             43 2-channel gray+alpha PNG (unexpected-channels)
 19 BMP bomb 30000^2 (too-large)                  44 float32 TIFF (unsupported-dtype)
 20 GIF bomb 65535^2 (too-large)
 21 WebP VP8X bomb 16384^2 (too-large)
 22 200x200 TIFF with max_pixels 20000 (too-large)
 23 PGM 9000x10, size known after decode (too-large)
 24 1x1 PNG (too-small)
 25 7x50 PNG (too-small)
Valid (must survive): 45 16-bit RGB PNG, 46 16-bit gray PNG, 47 RGBA PNG, 48 gray PNG,
  49 palette PNG, 50 8x8 PNG (= min_side), 51 BMP, 52 TIFF, 53 JPEG, 54 gray JPEG, 55 WebP,
  56 GIF, 57 PGM, 58 PNG with bytes after IEND, 59 JPEG with zero padding after FFD9,
  60 PNG named .jpg, 61 upper-case .PNG.

Errors (exact message): 62 quarantine fraction over the limit, 63 the same with > 5 bad files,
  64 empty manifest, 65 manifest without patient_id, 66 missing manifest, 67 zero-byte manifest,
  68 CSV with an unterminated quote, 69 text in the label column, 70 missing labels.json,
  71 labels.json without classes, 72 labels.json not JSON, 73 every row bad with limit 1.0 (GX row
  count), 74 duplicate (patient, x, y) (GX), 75 min_side > max_side, 76 fraction > 1.
  Config (pipeline.config.from_dict): 77 unknown key typo, 78 workers not an integer,
  79 preprocess.channels 2, 80 validate not a mapping.
  CLI (`medpipe stage validate`, exit 2, one stderr line): 81 missing -i labels, 82 manifest
  path that does not exist, 83 -i without '='.
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from helpers.validate_inputs import add_file, encode, make_valid, patch, row_for, run_validate, write_inputs

from pipeline import config
from pipeline.cli import main
from pipeline.core.errors import ConfigError, DataError, MedpipeError, ValidationFailed
from pipeline.stages import validate


def png_chunks(width: int, height: int, depth: int, colour: int, raw: bytes, extra: bytes = b"") -> bytes:
    """A PNG from scratch (for what cv2.imencode cannot write: gray+alpha, palettes, huge IHDRs)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", zlib.compress(raw))
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"IEND", b"")


def gray_alpha_png() -> bytes:
    raw = b"".join(b"\x00" + bytes(range(100)) for _ in range(50))  # filter byte + 50 x (gray, alpha)
    return png_chunks(50, 50, 8, 4, raw)


def palette_png() -> bytes:
    plte = struct.pack(">I", 6) + b"PLTE" + b"\xff\x00\x00\x00\x00\xff"
    plte += struct.pack(">I", zlib.crc32(b"PLTE\xff\x00\x00\x00\x00\xff"))
    raw = b"".join(b"\x00" + bytes([i % 2 for i in range(50)]) for _ in range(50))
    return png_chunks(50, 50, 8, 3, raw, extra=plte)


def patched(data: bytes, offset: int, fmt: str, *values: int) -> bytes:
    out = bytearray(data)
    out[offset : offset + struct.calcsize(fmt)] = struct.pack(fmt, *values)
    return bytes(out)


def jpeg_bomb() -> bytes:
    data = encode(patch(7), ".jpg")
    sof = data.find(b"\xff\xc0")
    return patched(data, sof + 5, ">HH", 60000, 60000)


def webp_bomb() -> bytes:
    import cv2

    data = cv2.imencode(".webp", patch(7, (50, 50, 4)), [cv2.IMWRITE_WEBP_QUALITY, 80])[1].tobytes()
    assert data[12:16] == b"VP8X"
    return patched(data, 24, "<HBHB", 0x3FFF, 0, 0x3FFF, 0)


def zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.txt", "x")
    return buf.getvalue()


def img(
    seed: int = 99, shape: tuple[int, ...] = (50, 50, 3), ext: str = ".png", dtype: type = np.uint8
) -> bytes:
    return encode(patch(seed, shape, dtype), ext)


def file_case(data: Callable[[], bytes], name: str = "900_idx5_x0_y0_class0.png") -> Callable[[list], dict]:
    return lambda base: add_file(data(), name)


def row_case(**fields: object) -> Callable[[list], dict]:
    return lambda base: {**add_file(img(), "900_idx5_x0_y0_class0.png"), **fields}


def missing(base: list) -> dict:
    return row_for("raw/never_written.png", 0, "900", 0, sha="0" * 64)


def vanished(base: list) -> dict:
    row = add_file(img(), "900_idx5_x0_y0_class0.png")
    Path(row["path"]).unlink()
    return row


def directory(base: list) -> dict:
    Path("raw/a_dir.png").mkdir(parents=True)
    return row_for("raw/a_dir.png", 0, "900", 0, sha="0" * 64)


def dangling(base: list) -> dict:
    Path("raw/link.png").symlink_to("gone.png")
    return row_for("raw/link.png", 0, "900", 0, sha="0" * 64)


def no_permission(base: list) -> dict:
    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their mode; the vanished/missing cases cover unreadable")
    row = add_file(img(), "900_idx5_x0_y0_class0.png")
    Path(row["path"]).chmod(0)
    return row


def replaced(base: list) -> dict:
    row = add_file(img(1), "900_idx5_x0_y0_class0.png")
    Path(row["path"]).write_bytes(img(2))
    return row


def appended(base: list) -> dict:
    row = add_file(img(1), "900_idx5_x0_y0_class0.png")
    with open(row["path"], "ab") as fh:
        fh.write(b"\x00")
    return row


def copy_of_first(patient: str, label: int) -> Callable[[list], dict]:
    return lambda base: add_file(Path(base[0]["path"]).read_bytes(), "copy.png", label, patient, 4000)


PNG, JPG = img(), img(ext=".jpg")
CORRUPT_IDAT = PNG[:60] + bytes(b ^ 0xFF for b in PNG[60:200]) + PNG[200:]
RNG = np.random.default_rng(5)

FILE_CASES: dict[str, tuple[Callable[[list], dict], str | None, dict]] = {
    "zero-byte": (file_case(lambda: b""), "zero-byte", {}),
    "png-cut-in-half": (file_case(lambda: PNG[: len(PNG) // 2]), "truncated", {}),
    "png-without-iend": (file_case(lambda: PNG[:-12]), "truncated", {}),
    "jpeg-cut-in-half": (file_case(lambda: JPG[: len(JPG) // 2], "t.jpg"), "truncated", {}),
    "jpeg-without-ffd9": (file_case(lambda: JPG[:-2], "t.jpg"), "truncated", {}),
    "random-bytes-png": (file_case(lambda: RNG.bytes(3000)), "not-an-image", {}),
    "text-as-png": (file_case(lambda: b"patient notes\n" * 40), "not-an-image", {}),
    "html-as-jpg": (file_case(lambda: b"<html><body>404</body></html>", "e.jpg"), "not-an-image", {}),
    "pdf-as-png": (file_case(lambda: b"%PDF-1.4\n%\xe2\xe3\n1 0 obj\n" * 9), "not-an-image", {}),
    "zip-as-png": (file_case(zip_bytes), "not-an-image", {}),
    "png-signature-garbage": (file_case(lambda: PNG[:8] + RNG.bytes(500) + PNG[-12:]), "undecodable", {}),
    "png-corrupt-idat": (file_case(lambda: CORRUPT_IDAT), "undecodable", {}),
    "jpeg-signature-garbage": (
        file_case(lambda: b"\xff\xd8\xff\xe0" + RNG.bytes(900) + b"\xff\xd9", "g.jpg"),
        "undecodable",
        {},
    ),
    "png-0x0": (file_case(lambda: png_chunks(0, 0, 8, 0, b"\x00")), "undecodable", {}),
    "png-bomb-header": (file_case(lambda: png_chunks(100000, 100000, 8, 0, b"\x00" * 101)), "too-large", {}),
    "png-over-max-pixels": (
        file_case(lambda: png_chunks(20000, 20000, 1, 0, b"\x00" * 2501)),
        "too-large",
        {},
    ),
    "png-over-max-side": (file_case(lambda: img(shape=(10, 9000))), "too-large", {}),
    "jpeg-sof-bomb": (file_case(jpeg_bomb, "b.jpg"), "too-large", {}),
    "bmp-bomb": (
        file_case(lambda: patched(img(ext=".bmp"), 18, "<ii", 30000, 30000), "b.bmp"),
        "too-large",
        {},
    ),
    "gif-bomb": (
        file_case(lambda: patched(img(ext=".gif"), 6, "<HH", 65535, 65535), "b.gif"),
        "too-large",
        {},
    ),
    "webp-vp8x-bomb": (file_case(webp_bomb, "b.webp"), "too-large", {}),
    "tiff-over-max-pixels": (
        file_case(lambda: img(shape=(200, 200, 3), ext=".tiff"), "b.tif"),
        "too-large",
        {"max_pixels": 20000},
    ),
    "pgm-over-max-side": (file_case(lambda: img(shape=(10, 9000), ext=".pgm"), "b.pgm"), "too-large", {}),
    "1x1": (file_case(lambda: img(shape=(1, 1, 3))), "too-small", {}),
    "7x50": (file_case(lambda: img(shape=(7, 50, 3))), "too-small", {}),
    "label-2-of-2": (row_case(label=2), "label-not-in-set", {}),
    "label-negative": (row_case(label=-1), "label-not-in-set", {}),
    "label-empty": (row_case(label=None), "label-not-in-set", {}),
    "class-name-mismatch": (row_case(label=0, class_name="1"), "label-not-in-set", {}),
    "class-name-unknown": (row_case(class_name="tumour"), "label-not-in-set", {}),
    "patient-empty": (row_case(patient_id=None), "missing-patient", {}),
    "patient-whitespace": (row_case(patient_id="   "), "missing-patient", {}),
    "bad-name": (
        row_case(format_error="name does not match <patient>_idx5_x<x>_y<y>_class<c>.png"),
        "bad-name",
        {},
    ),
    "directory": (directory, "unreadable", {}),
    "missing-file": (missing, "unreadable", {}),
    "vanished-file": (vanished, "unreadable", {}),
    "dangling-symlink": (dangling, "unreadable", {}),
    "chmod-000": (no_permission, "unreadable", {}),
    "replaced-after-ingest": (replaced, "sha256-mismatch", {}),
    "byte-appended": (appended, "sha256-mismatch", {}),
    "duplicate-copy": (copy_of_first("10", 0), "duplicate", {}),
    "duplicate-other-patient-class": (copy_of_first("77", 1), "duplicate", {}),
    "gray-alpha-png": (file_case(gray_alpha_png), "unexpected-channels", {}),
    "float32-tiff": (
        file_case(lambda: encode(patch(3, (50, 50)).astype(np.float32) / 255, ".tiff"), "f.tif"),
        "unsupported-dtype",
        {},
    ),
    "png-16bit": (file_case(lambda: img(dtype=np.uint16)), None, {}),
    "png-16bit-gray": (file_case(lambda: img(shape=(50, 50), dtype=np.uint16)), None, {}),
    "png-rgba": (file_case(lambda: img(shape=(50, 50, 4))), None, {}),
    "png-gray": (file_case(lambda: img(shape=(50, 50))), None, {}),
    "png-palette": (file_case(palette_png), None, {}),
    "png-8x8-min-side": (file_case(lambda: img(shape=(8, 8, 3))), None, {}),
    "bmp": (file_case(lambda: img(ext=".bmp"), "v.bmp"), None, {}),
    "tiff": (file_case(lambda: img(ext=".tiff"), "v.tif"), None, {}),
    "jpeg": (file_case(lambda: JPG, "v.jpg"), None, {}),
    "jpeg-gray": (file_case(lambda: img(shape=(50, 50), ext=".jpg"), "v.jpg"), None, {}),
    "webp": (file_case(lambda: img(ext=".webp"), "v.webp"), None, {}),
    "gif": (file_case(lambda: img(ext=".gif"), "v.gif"), None, {}),
    "pgm": (file_case(lambda: img(shape=(50, 50), ext=".pgm"), "v.pgm"), None, {}),
    "png-trailing-bytes": (file_case(lambda: PNG + b"\x00" * 20), None, {}),
    "jpeg-zero-padding": (file_case(lambda: JPG + b"\x00" * 16, "v.jpg"), None, {}),
    "png-named-jpg": (file_case(lambda: PNG, "v.jpg"), None, {}),
    "upper-case-ext": (file_case(lambda: PNG, "V.PNG"), None, {}),
}


@pytest.mark.parametrize("case", FILE_CASES, ids=list(FILE_CASES))
def test_file_case(case: str, in_tmp: Path) -> None:
    build, reason, params = FILE_CASES[case]
    base = make_valid(12)
    added = build(base)
    summary, validated, quarantine = run_validate([*base, added], max_quarantine_fraction=0.5, **params)
    survivors = set(validated["path"])
    assert {r["path"] for r in base} <= survivors, "a valid image was lost"
    if reason is None:
        assert quarantine.empty, quarantine.to_dict("records")
        assert added["path"] in survivors and summary["n_valid"] == 13
    else:
        assert quarantine[["path", "reason"]].values.tolist() == [[added["path"], reason]]
        assert isinstance(quarantine["detail"].iloc[0], str) and quarantine["detail"].iloc[0]
        assert summary["reasons"][reason] == 1 and summary["n_valid"] == 12


def _raises(exc: type, inputs: dict, outputs: dict, params: dict | None = None) -> str:
    with pytest.raises(exc) as err:
        validate.run(config.from_dict(params or {}), inputs, outputs)
    assert not any(p.exists() for p in outputs.values()), "partial outputs left behind"
    return str(err.value)


def test_quarantine_over_limit_names_count_fraction_limit_and_files(in_tmp: Path) -> None:
    rows = [*make_valid(12), add_file(b"", "bad.png")]
    msg = _raises(ValidationFailed, *write_inputs(rows))
    assert msg == (
        "1 of 13 images quarantined (7.7%) > validate.max_quarantine_fraction 1.0%: raw/bad.png (zero-byte); "
        "fix or remove these files (the log above lists up to 200; reports/validation/quarantine.csv is written "
        "when the stage passes) or raise the limit"
    )


def test_quarantine_over_limit_lists_five_and_counts_the_rest(in_tmp: Path) -> None:
    bad = [add_file(b"x" * i, f"bad{i}.png") for i in range(1, 8)]
    msg = _raises(
        ValidationFailed,
        *write_inputs([*make_valid(12), *bad]),
        {"validate": {"max_quarantine_fraction": 0.1}},
    )
    shown = ", ".join(f"raw/bad{i}.png (not-an-image)" for i in range(1, 6))
    assert msg.startswith(
        f"7 of 19 images quarantined (36.8%) > validate.max_quarantine_fraction 10.0%: {shown} and 2 more;"
    )


def _manifest_text(text: str | bytes) -> tuple[dict, dict]:
    inputs, outputs = write_inputs(make_valid(2))
    data = text.encode() if isinstance(text, str) else text
    inputs["manifest"].write_bytes(data)
    return inputs, outputs


HEADER = "path,bytes,sha256,label,class_name,patient_id,x,y,source_split\n"
MANIFEST_ERRORS = {
    "empty-manifest": (
        HEADER,
        "manifest interim/manifest.csv has no rows; check data.source and rerun ingest/regroup",
    ),
    "no-patient-column": (
        "path,bytes,sha256,label,class_name\nraw/a.png,1,ab,0,0\n",
        "manifest interim/manifest.csv lacks column(s) patient_id",
    ),
    "zero-byte-manifest": (
        "",
        "manifest interim/manifest.csv is not a readable CSV (No columns to parse from file); rerun regroup",
    ),
    "unterminated-quote": (
        HEADER + 'raw/a.png,1,"ab,0,0,p,0,0,\n',
        "manifest interim/manifest.csv is not a readable CSV (Error tokenizing data. C error: EOF inside string "
        "starting at row 1); rerun regroup",
    ),
    "text-in-int-column": (
        HEADER + "raw/a.png,1,ab,zero,0,p,0,0,\n",
        "manifest interim/manifest.csv is not a readable CSV (Unable to parse string 'zero' at position 0); "
        "rerun regroup",
    ),
}


@pytest.mark.parametrize("case", MANIFEST_ERRORS, ids=list(MANIFEST_ERRORS))
def test_bad_manifest(case: str, in_tmp: Path) -> None:
    text, message = MANIFEST_ERRORS[case]
    assert _raises(DataError, *_manifest_text(text)) == message


def test_missing_manifest(in_tmp: Path) -> None:
    inputs, outputs = write_inputs(make_valid(2))
    inputs["manifest"].unlink()
    msg = _raises(DataError, inputs, outputs)
    assert msg == "manifest interim/manifest.csv not found; run the stage that writes it (dvc repro)"


LABEL_ERRORS = {
    "labels-missing": (None, "interim/labels.json not found; run the stage that writes it (dvc repro)"),
    "labels-without-classes": (
        '{"format": "idc"}',
        "interim/labels.json must hold a non-empty list of class names under 'classes'; rerun regroup",
    ),
    "labels-not-json": (
        "{classes: [0, 1]",
        "interim/labels.json is not valid JSON (Expecting property name enclosed in double quotes: line 1 "
        "column 2 (char 1)); rerun regroup",
    ),
}


@pytest.mark.parametrize("case", LABEL_ERRORS, ids=list(LABEL_ERRORS))
def test_bad_labels(case: str, in_tmp: Path) -> None:
    text, message = LABEL_ERRORS[case]
    inputs, outputs = write_inputs(make_valid(2))
    if text is None:
        inputs["labels"].unlink()
    else:
        inputs["labels"].write_text(text)
    assert _raises(DataError, inputs, outputs) == message


def test_every_row_bad_with_limit_one_fails_the_row_count_expectation(in_tmp: Path) -> None:
    rows = [add_file(b"", f"{i}.png") for i in range(3)]
    msg = _raises(ValidationFailed, *write_inputs(rows), {"validate": {"max_quarantine_fraction": 1.0}})
    assert msg.startswith(
        "2 of 13 data expectations failed: expect_table_row_count_to_be_between(table): e.g. 0; "
    )


def test_duplicate_patch_coordinates_fail_the_suite(in_tmp: Path) -> None:
    rows = make_valid(6)
    rows[5]["patient_id"], rows[5]["x"] = rows[1]["patient_id"], rows[1]["x"]
    msg = _raises(ValidationFailed, *write_inputs(rows))
    assert msg == (
        "1 of 14 data expectations failed: expect_compound_columns_to_be_unique(patient_id, x, y): 2 unexpected, "
        'e.g. [{"patient_id": "11", "x": 50, "y": 0}, {"patient_id": "11", "x": 50, "y": 0}]'
    )


PARAM_ERRORS = {
    "min-side-over-max-side": (
        {"validate": {"min_side": 100, "max_side": 50}},
        "params: validate.min_side (100) is above validate.max_side (50)",
    ),
    "fraction-over-one": (
        {"validate": {"max_quarantine_fraction": 5}},
        "params: 'validate.max_quarantine_fraction' is 5; accepted range: 0 <= value <= 1",
    ),
}


@pytest.mark.parametrize("case", PARAM_ERRORS, ids=list(PARAM_ERRORS))
def test_unusable_validate_params(case: str, in_tmp: Path) -> None:
    params, message = PARAM_ERRORS[case]
    assert _raises(ConfigError, *write_inputs(make_valid(2)), params) == message


CONFIG_ERRORS = {
    "typo": (
        {"validate": {"max_quarantin_fraction": 0.1}},
        "params: unknown key 'validate.max_quarantin_fraction'; did you mean 'max_quarantine_fraction'?",
    ),
    "workers-not-int": (
        {"validate": {"workers": "four"}},
        "params: 'validate.workers' must be an integer, got 'four'",
    ),
    "channels-literal": (
        {"preprocess": {"channels": 2}},
        "params: 'preprocess.channels' is 2; expected one of 1, 3",
    ),
    "section-not-mapping": ({"validate": 5}, "params: 'validate' must be a mapping, got 5"),
}


@pytest.mark.parametrize("case", CONFIG_ERRORS, ids=list(CONFIG_ERRORS))
def test_config_errors(case: str) -> None:
    raw, message = CONFIG_ERRORS[case]
    with pytest.raises(ConfigError) as err:
        config.from_dict(raw)
    assert str(err.value) == message


CLI_ERRORS = {
    "missing-labels-input": (
        ["-i", "manifest=interim/manifest.csv"],
        "stage validate is missing -i labels=PATH; see the validate stage in dvc.yaml",
    ),
    "manifest-not-found": (
        ["-i", "manifest=nope.csv", "-i", "labels=interim/labels.json"],
        "manifest nope.csv not found; run the stage that writes it (dvc repro)",
    ),
    "no-equals-sign": (["-i", "manifest"], "-i expects key=path, got 'manifest'"),
}


@pytest.mark.parametrize("case", CLI_ERRORS, ids=list(CLI_ERRORS))
def test_cli_errors(case: str, in_tmp: Path, capsys: pytest.CaptureFixture) -> None:
    args, message = CLI_ERRORS[case]
    write_inputs(make_valid(2))
    Path("params.yaml").write_text("validate:\n  workers: 1\n")
    outs = ["-o", "validated=v.csv", "-o", "quarantine=q.csv", "-o", "summary=s.json", "-o", "docs=docs"]
    assert main(["stage", "validate", "--params", "params.yaml", *args, *outs]) == 2
    assert capsys.readouterr().err.splitlines() == [f"medpipe: error: {message}"]
    assert issubclass(ValidationFailed, MedpipeError) and not Path("v.csv").exists()


def test_suite_has_at_least_forty_distinct_cases_covering_every_reason() -> None:
    n = len(FILE_CASES) + 2 + len(MANIFEST_ERRORS) + 1 + len(LABEL_ERRORS) + 2 + len(PARAM_ERRORS)
    n += len(CONFIG_ERRORS) + len(CLI_ERRORS)
    assert n == 83  # the numbered list in the module docstring
    assert {r for _, r, _ in FILE_CASES.values() if r} == set(validate.REASONS)
