"""End-to-end bad-input suite, the data side: bad (and odd but valid) files through the REAL stages.

Each test builds a source folder, points a tiny copy of the project at it (data.format imagefolder,
data.source = that folder) and runs `dvc repro validate` once (ingest -> regroup -> validate) for
all its cases together. Every file then has exactly one asserted outcome:
  Kept(warning)        a row of data/interim/validated.csv (its `warning` column as given)
  Quarantined(reason)  a row of reports/validation/quarantine.csv with that reason
  Skipped(reason)      a row of data/interim/skipped.csv (regroup left it out) with that reason
  NotIngested(reason)  not in data/raw; counted under that reason in summary.json's not_ingested
and no valid file is lost: every raw manifest row is in exactly one of validated / quarantine /
skipped. Error cases (one repro each) assert the exact one-line message and exit status.
FAST_CASES (one repro) fail fast on the commonest cases; the full case list follows in one more repro.
The source-side cases (archives, links, credentials, atomic ingest) are in tests/e2e/test_bad_input_sources_e2e.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers.bad_files import (
    corrupt_idat,
    encode,
    float_tiff,
    gray16_png,
    gray_alpha_png,
    jpeg,
    jpeg_main_eoi_missing_with_thumbnail,
    jpeg_sof_bomb,
    palette_png,
    pixels,
    png,
    png_bomb,
    with_exif,
)
from helpers.git_dvc_project import GIT_ENV, make_git_dvc_project, merge


@dataclass(frozen=True)
class Kept:
    warning: str = ""


@dataclass(frozen=True)
class Quarantined:
    reason: str


@dataclass(frozen=True)
class Skipped:
    reason: str


@dataclass(frozen=True)
class NotIngested:
    reason: str


Outcome = Kept | Quarantined | Skipped | NotIngested


@dataclass(frozen=True)
class Case:
    rel: str  # path below the source folder (= below data/raw)
    data: Callable[[], bytes]
    expect: Outcome
    note: str = ""


SEED = iter(range(10_000, 20_000))  # every generated image distinct


def _png(shape=(32, 32, 3)) -> Callable[[], bytes]:
    seed = next(SEED)
    return lambda: png(seed, shape)


def _jpeg(shape=(32, 32, 3)) -> Callable[[], bytes]:
    seed = next(SEED)
    return lambda: jpeg(seed, shape)


def _enc(ext: str, shape=(32, 32, 3), dtype=np.uint8, high=255) -> Callable[[], bytes]:
    seed = next(SEED)
    return lambda: encode(pixels(seed, shape, dtype, high), ext)


def _then(make: Callable[[], bytes], edit: Callable[[bytes], bytes]) -> Callable[[], bytes]:
    return lambda: edit(make())


def _const(data: bytes) -> Callable[[], bytes]:
    return lambda: data


def _seeded(fn: Callable[[int], bytes]) -> Callable[[], bytes]:
    seed = next(SEED)
    return lambda: fn(seed)


TWELVE_BIT = pixels(7, (40, 40), np.uint16, high=4095)
TWELVE_BIT[0, 0] = 4095  # the dataset's brightest sample: window [0, 4095]
TWELVE_BIT[0, 1] = 0
DARK_TWELVE_BIT = pixels(8, (40, 40), np.uint16, high=250)  # the old rule left this one unscaled
DUPLICATE = png(4242)

CASES: list[Case] = [
    # --- kept: valid images in every encoding a dataset brings ---------------------------------
    Case("neg/rgb.png", _png(), Kept()),
    Case("neg/gray.png", _png((32, 32)), Kept()),
    Case("neg/rgba.png", _png((32, 32, 4)), Kept()),
    Case("neg/palette.png", _seeded(palette_png), Kept()),
    Case("neg/rgb16.png", _enc(".png", (32, 32, 3), np.uint16, 4095), Kept()),
    Case("neg/gray12in16.png", _const(gray16_png(TWELVE_BIT)), Kept(), "12-bit in 16-bit PNG"),
    Case("pos/dark12in16.png", _const(gray16_png(DARK_TWELVE_BIT)), Kept(), "max 250: same window"),
    Case("neg/photo.jpg", _jpeg(), Kept()),
    Case("neg/grayphoto.jpeg", _jpeg((32, 32)), Kept()),
    Case("neg/scan.bmp", _enc(".bmp"), Kept()),
    Case("neg/scan.tif", _enc(".tiff"), Kept()),
    Case("neg/scan.tiff", _enc(".tiff", (32, 32)), Kept()),
    Case("neg/lossless.webp", _enc(".webp"), Kept(), "was never ingested"),
    Case("neg/film.pgm", _enc(".pgm", (32, 32)), Kept(), "was never ingested"),
    Case("neg/film.ppm", _enc(".ppm"), Kept(), "was never ingested"),
    Case("neg/min.png", _png((8, 8, 3)), Kept(), "= validate.min_side"),
    Case("neg/UPPER.PNG", _png(), Kept()),
    Case("neg/png_named.jpg", _png(), Kept()),
    Case("neg/deeper/nested/x.png", _png(), Kept(), "files deeper in a class folder"),
    Case("neg/with space.png", _png(), Kept()),
    Case('neg/comma, "quote".png', _png(), Kept(), "CSV quoting through every stage"),
    Case("neg/é-ünïcödé.png", _png(), Kept()),
    Case("neg/#hash.png", _png(), Kept()),
    Case("neg/-dash.png", _png(), Kept()),
    # names pandas' default NA parsing turned into NA (-> missing-patient / label-not-in-set before)
    Case("neg/NA.png", _png(), Kept(), "was missing-patient"),
    Case("neg/nan.png", _png(), Kept(), "was missing-patient"),
    Case("pos/null.png", _png(), Kept(), "was missing-patient"),
    Case("pos/NULL.png", _png(), Kept(), "was missing-patient"),
    Case("pos/NaN.png", _png(), Kept(), "was missing-patient"),
    Case("pos/<NA>.png", _png(), Kept(), "was missing-patient"),
    Case("pos/1.#IND.png", _png(), Kept(), "was missing-patient"),
    Case("pos/-nan.png", _png(), Kept(), "was missing-patient"),
    Case("None/None.png", _png(), Kept(), "class None: was label-not-in-set"),
    Case("None/a.png", _png(), Kept(), "class None: was label-not-in-set"),
    Case("None/n-a.png", _png(), Kept(), "class None: was label-not-in-set"),
    # decodable files with bytes after their end: a warning, not `truncated`
    Case(
        "pos/trailing.png",
        _then(_png(), lambda d: d + b"\x00" * 1000),
        Kept("1000 bytes after the IEND chunk"),
        "was truncated",
    ),
    Case(
        "pos/trailing_html.png",
        _then(_png(), lambda d: d + b"<html>error</html>" * 10),
        Kept("180 bytes after the IEND chunk"),
        "was truncated",
    ),
    Case(
        "pos/trailing.jpg",
        _then(_jpeg(), lambda d: d + b"junk" * 50),
        Kept("200 bytes after the FFD9 end marker"),
        "was truncated",
    ),
    Case(
        "pos/padded.jpg",
        _then(_jpeg(), lambda d: d + b"\x00" * 16),
        Kept("16 bytes after the FFD9 end marker"),
    ),
    Case(
        "pos/rotated.jpg",
        _then(_jpeg((24, 40, 3)), lambda d: with_exif(d, 6)),
        Kept("EXIF orientation 6 applied"),
        "was silently unrotated",
    ),
    Case("pos/exif_upright.jpg", _then(_jpeg(), lambda d: with_exif(d, 1)), Kept()),
    # --- quarantined with the true reason -----------------------------------------------------
    Case("neg/empty.png", _const(b""), Quarantined("zero-byte")),
    Case("neg/half.png", _then(_png(), lambda d: d[: len(d) // 2]), Quarantined("truncated")),
    Case("neg/no_iend.png", _then(_png(), lambda d: d[:-12]), Quarantined("truncated")),
    Case("neg/half.jpg", _then(_jpeg(), lambda d: d[: len(d) // 2]), Quarantined("truncated")),
    Case("neg/no_eoi.jpg", _then(_jpeg(), lambda d: d[:-2]), Quarantined("truncated")),
    Case(
        "neg/thumb_eoi_only.jpg",
        _seeded(jpeg_main_eoi_missing_with_thumbnail),
        Quarantined("truncated"),
        "the EXIF thumbnail's FFD9 is not the image's",
    ),
    Case(
        "neg/random.png",
        _const(bytes(np.random.default_rng(5).integers(0, 256, 500, np.uint8))),
        Quarantined("not-an-image"),
    ),
    Case("neg/text.png", _const(b"just some notes\n" * 20), Quarantined("not-an-image")),
    Case("neg/error.jpg", _const(b"<!DOCTYPE html><html>403 Forbidden</html>"), Quarantined("not-an-image")),
    Case("neg/pdf.png", _const(b"%PDF-1.4\n" + b"0" * 300), Quarantined("not-an-image")),
    Case(
        "neg/garbage_sig.png",
        _const(b"\x89PNG\r\n\x1a\n" + b"\x01" * 200 + b"\x00\x00\x00\x00IEND\xaeB`\x82"),
        Quarantined("undecodable"),
    ),
    Case("neg/bad_idat.png", _seeded(corrupt_idat), Quarantined("undecodable")),
    Case("neg/bomb.png", _const(png_bomb()), Quarantined("too-large")),
    Case("neg/sof_bomb.jpg", _seeded(jpeg_sof_bomb), Quarantined("too-large")),
    Case("neg/too_wide.png", _png((10, 9000, 3)), Quarantined("too-large")),
    Case("neg/dot.png", _png((1, 1, 3)), Quarantined("too-small")),
    Case("neg/sliver.png", _png((7, 50, 3)), Quarantined("too-small")),
    Case("neg/gray_alpha.png", _seeded(gray_alpha_png), Quarantined("unexpected-channels")),
    Case("neg/float.tiff", _seeded(float_tiff), Quarantined("unsupported-dtype")),
    Case("neg/dup_a.png", _const(DUPLICATE), Kept(), "first of two identical files is kept"),
    Case("pos/dup_b.png", _const(DUPLICATE), Quarantined("duplicate"), "same bytes, other class"),
    # --- skipped by regroup, listed with the reason (was: counted in a log line only) ---------
    Case("neg/arrays.npz", _const(b"PK\x03\x04 not really"), Skipped("not an image (.npz)")),
    Case("neg/scan.dcm", _const(b"\x00" * 128 + b"DICM" + b"\x00" * 64), Skipped("not an image (.dcm)")),
    Case("neg/copy/rgb_twin.png", _const(png(777)), Kept(), "kept copy (nearest the root)"),
    Case("neg/copy/deeper/rgb_twin.png", _const(png(777)), Skipped("exact copy"), "Kaggle's doubled trees"),
    # --- never ingested, counted by reason in the validation summary --------------------------
    Case("neg/readme.txt", _const(b"about this dataset\n"), NotIngested("not-an-image-name")),
    Case("pos/.DS_Store", _const(b"\x00\x00\x00\x01Bud1"), NotIngested("hidden")),
]

# filler: enough valid images per class that the cases above stay under the quarantine limit
FILLER = [Case(f"{c}/filler_{i:02d}.png", _png(), Kept()) for c in ("neg", "pos", "None") for i in range(6)]

FAST_NAMES = {
    "neg/rgb.png",
    "neg/gray12in16.png",
    "pos/dark12in16.png",
    "neg/lossless.webp",
    'neg/comma, "quote".png',
    "neg/NA.png",
    "pos/null.png",
    "None/None.png",
    "None/a.png",
    "pos/trailing.png",
    "pos/trailing.jpg",
    "pos/rotated.jpg",
    "neg/no_iend.png",
    "neg/thumb_eoi_only.jpg",
    "neg/text.png",
    "neg/bomb.png",
    "neg/dup_a.png",
    "pos/dup_b.png",
    "neg/arrays.npz",
    "neg/scan.dcm",
}
FAST_CASES = [c for c in CASES if c.rel in FAST_NAMES]


def _env() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env.pop("MLFLOW_TRACKING_URI", None)
    env.update(GIT_ENV)
    return env


def _project(tmp: Path, source: Path, params: dict) -> tuple[Path, dict]:
    env = _env()
    work = make_git_dvc_project(tmp / "proj", "bad-input-data", env)
    raw = yaml.safe_load((work / "params.yaml").read_text())
    merge(merge(raw, {"data": {"source": str(source), "format": "imagefolder"}}), params)
    (work / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return work, env


def _write(source: Path, cases: list[Case]) -> None:
    for case in cases:
        path = source / case.rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(case.data())


def repro_validate(
    tmp: Path, cases: list[Case], params: dict | None = None
) -> tuple[Path, subprocess.CompletedProcess]:
    source = tmp / "source"
    _write(source, cases)
    params = merge({"validate": {"max_quarantine_fraction": 0.9}}, params or {})
    work, env = _project(tmp, source, params)
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", "repro", "validate"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    return work, proc


def observed(work: Path) -> dict[str, Outcome]:
    """What the stages did with each file (key: path below data/raw)."""
    strip = len("data/raw/")
    out: dict[str, Outcome] = {}
    validated = pd.read_csv(work / "data/interim/validated.csv", dtype=str, keep_default_na=False)
    for path, warning in zip(validated["path"], validated["warning"], strict=True):
        out[path[strip:]] = Kept(warning)
    quarantine = pd.read_csv(work / "reports/validation/quarantine.csv", dtype=str, keep_default_na=False)
    for path, reason in zip(quarantine["path"], quarantine["reason"], strict=True):
        assert path[strip:] not in out, f"{path} both kept and quarantined"
        out[path[strip:]] = Quarantined(reason)
    skipped = pd.read_csv(work / "data/interim/skipped.csv", dtype=str, keep_default_na=False)
    for path, reason in zip(skipped["path"], skipped["reason"], strict=True):
        assert path[strip:] not in out, f"{path} both kept/quarantined and skipped"
        out[path[strip:]] = Skipped(reason)
    return out


def assert_outcomes(work: Path, proc: subprocess.CompletedProcess, cases: list[Case]) -> None:
    assert proc.returncode == 0, f"dvc repro validate failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    got = observed(work)
    raw = pd.read_csv(work / "data/manifests/raw.csv", dtype=str, keep_default_na=False)
    ingested = {p[len("data/raw/") :] for p in raw["path"]}
    assert ingested == set(got), "every ingested file has exactly one outcome"
    summary = json.loads((work / "reports/validation/summary.json").read_text())
    wrong = {}
    for case in cases:
        if isinstance(case.expect, NotIngested):
            if case.rel in ingested or summary["not_ingested"].get(case.expect.reason, 0) < 1:
                wrong[case.rel] = (
                    case.expect,
                    "ingested" if case.rel in ingested else summary["not_ingested"],
                )
        elif got.get(case.rel) != case.expect:
            wrong[case.rel] = (case.expect, got.get(case.rel, "missing"))
    assert wrong == {}, "\n".join(f"{k}: expected {e}, got {g}" for k, (e, g) in wrong.items())
    expected_not_ingested: dict[str, int] = {}
    for case in cases:
        if isinstance(case.expect, NotIngested):
            expected_not_ingested[case.expect.reason] = expected_not_ingested.get(case.expect.reason, 0) + 1
    assert summary["not_ingested"] == expected_not_ingested
    skips = [c for c in cases if isinstance(c.expect, Skipped)]
    assert summary["n_skipped"] == len(skips)
    assert summary["n_valid"] == sum(isinstance(c.expect, Kept) for c in cases)


def assert_window(work: Path, cases: list[Case]) -> None:
    """One intensity window for the dataset's >8-bit images, written by validate."""
    window = json.loads((work / "data/interim/intensity.json").read_text())
    assert window["window"] == [0, 4095] and window["source"] == "observed"
    deep = [c for c in cases if c.rel.endswith(("12in16.png", "rgb16.png"))]
    assert window["n_images_over_8_bit"] == len(deep)


def assert_rotation(work: Path) -> None:
    validated = pd.read_csv(work / "data/interim/validated.csv", dtype=str, keep_default_na=False)
    row = validated[validated["path"] == "data/raw/pos/rotated.jpg"].iloc[0]
    assert (row["height"], row["width"]) == ("40", "24")  # stored 24x40, EXIF says rotate 90


def assert_none_class(work: Path) -> None:
    labels = json.loads((work / "data/interim/labels.json").read_text())
    assert labels["classes"] == ["None", "neg", "pos"]


def test_fast_subset_of_bad_data_through_dvc_repro(tmp_path):
    cases = FAST_CASES + FILLER
    work, proc = repro_validate(tmp_path, cases)
    assert_outcomes(work, proc, cases)
    assert_window(work, cases)
    assert_rotation(work)
    assert_none_class(work)


def test_every_bad_data_case_through_dvc_repro(tmp_path):
    cases = CASES + FILLER
    assert len(CASES) >= 55
    work, proc = repro_validate(tmp_path, cases)
    assert_outcomes(work, proc, cases)
    assert_window(work, cases)
    assert_rotation(work)
    assert_none_class(work)


# --- error cases: one repro each, exact one-line message ------------------------------------

ERRORS = {
    "batch-size-0": (
        {"train": {"batch_size": 0}},
        "medpipe: error: params: 'train.batch_size' is 0; accepted range: 1 <= value <= 65536",
    ),
    "image-size-100000": (
        {"preprocess": {"image_size": 100000}},
        "medpipe: error: params: 'preprocess.image_size' is 100000; accepted range: 8 <= value <= 2048",
    ),
    "dropout-1.5": (
        {"train": {"dropout": 1.5}},
        "medpipe: error: params: 'train.dropout' is 1.5; accepted range: 0 <= value < 1",
    ),
    "negative-learning-rate": (
        {"train": {"learning_rate": -0.001}},
        "medpipe: error: params: 'train.learning_rate' is -0.001; accepted range: 0 < value <= 1",
    ),
    "epochs-0": (
        {"train": {"epochs": 0}},
        "medpipe: error: params: 'train.epochs' is 0; accepted range: 1 <= value <= 100_000",
    ),
    "weights-text-file": (
        {"train": {"weights": "notes.txt"}},
        "medpipe: error: params: 'train.weights' is 'notes.txt'; accepted: imagenet, none or the path of a "
        "Keras .weights.h5 or *_notop.h5 file",
    ),
    "quarantine-fraction-over-1": (
        {"validate": {"max_quarantine_fraction": 1.5}},
        "medpipe: error: params: 'validate.max_quarantine_fraction' is 1.5; accepted range: 0 <= value <= 1",
    ),
}


@pytest.mark.parametrize("case", ERRORS, ids=list(ERRORS))
def test_impossible_params_stop_ingest_before_any_data_is_touched(tmp_path, case):
    params, message = ERRORS[case]
    work, proc = repro_validate(
        tmp_path, [Case("a/x.png", _png(), Kept()), Case("b/y.png", _png(), Kept())], params
    )
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.startswith("medpipe: error:")]
    assert lines == [message]
    assert not (work / "data/raw").exists()


def test_a_class_folder_without_images_is_refused_by_name(tmp_path):
    cases = [
        Case("a/x.png", _png(), Kept()),
        Case("b/y.png", _png(), Kept()),
        Case("c/arrays.npz", _const(b"PK\x03\x04"), Skipped("")),
    ]
    work, proc = repro_validate(tmp_path, cases)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.startswith("medpipe: error:")]
    assert lines == [
        "medpipe: error: class folder c/ holds no image OpenCV can read, only 1 skipped file(s), e.g. arrays.npz "
        "(not an image (.npz)); convert them to PNG or remove the folder (1 such folder(s))"
    ]


def test_over_the_quarantine_limit_is_one_message_naming_the_files(tmp_path):
    cases = [Case(f"a/ok{i}.png", _png(), Kept()) for i in range(4)] + [
        Case("b/ok.png", _png(), Kept()),
        Case("b/empty.png", _const(b""), Quarantined("zero-byte")),
    ]
    work, proc = repro_validate(tmp_path, cases, {"validate": {"max_quarantine_fraction": 0.1}})
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.startswith("medpipe: error:")]
    assert len(lines) == 1
    assert lines[0].startswith(
        "medpipe: error: 1 of 6 images quarantined (16.7%) > validate.max_quarantine_fraction 10.0%: "
        "data/raw/b/empty.png (zero-byte)"
    )
    assert not (work / "data/interim/validated.csv").exists()


def test_real_kermany_names_are_kept_through_dvc_repro(tmp_path):
    """`person447_virus_921_1.jpeg` (a real file of the published set) was quarantined as bad-name."""
    names = ["person447_virus_921_1.jpeg", "person1_bacteria_1.jpeg", "person1946_bacteria_4874.jpeg"]
    names += [f"person{100 + i}_virus_{200 + i}.jpeg" for i in range(4)]
    cases = [Case(f"chest_xray/train/PNEUMONIA/{n}", _jpeg((40, 40)), Kept()) for n in names]
    cases += [
        Case(f"chest_xray/train/NORMAL/IM-{i:04d}-0001.jpeg", _jpeg((40, 40)), Kept()) for i in range(6)
    ]
    cases += [Case("chest_xray/train/NORMAL/NORMAL2-IM-1427-0001.jpeg", _jpeg((40, 40)), Kept())]
    work, proc = repro_validate(tmp_path, cases, {"data": {"format": "chest_xray", "classes": "three"}})
    assert_outcomes(work, proc, cases)
    validated = pd.read_csv(work / "data/interim/validated.csv", dtype=str, keep_default_na=False)
    row = validated[validated["path"].str.endswith("person447_virus_921_1.jpeg")].iloc[0]
    assert (row["class_name"], row["patient_id"]) == ("VIRUS", "person447")
