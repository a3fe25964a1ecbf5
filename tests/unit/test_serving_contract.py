"""The served model's contract: image bytes in (as MLflow's scoring server parses them), server paths
only under allowed roots and never in the scoring server, identical refusals, header-checked limits."""

from __future__ import annotations

import base64
import json
import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from mlflow.pyfunc.scoring_server import infer_and_parse_data

from pipeline.core import images
from pipeline.core.errors import ConfigError
from pipeline.serving import contract, pyfunc_model
from pipeline.serving.limits import Limits, RequestRefused, header_pixels
from pipeline.serving.paths import ENV_IN_SERVER, ENV_ROOTS, MLFLOW_SERVING_ENV, REFUSED, PathPolicy
from pipeline.serving.predictor import Predictor, ServingConfig

CFG = ServingConfig(classes=["neg", "pos"], positive="pos", threshold=0.5, image_size=8, channels=3)


def png(h: int = 12, w: int = 10, dtype=np.uint8) -> bytes:
    img = (np.arange(h * w * 3).reshape(h, w, 3) % (255 if dtype == np.uint8 else 65000)).astype(dtype)
    return cv2.imencode(".png", img)[1].tobytes()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height but carries a few bytes of pixel data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


class MeanModel:
    """predict_on_batch: [1 - m, m] with m the mean pixel / 255 (deterministic, no Keras)."""

    def predict_on_batch(self, x):
        m = x.reshape(len(x), -1).mean(axis=1) / 255.0
        return np.stack([1 - m, m], axis=1)


def test_mlflow_parsing_of_each_json_format_yields_the_sent_bytes() -> None:
    schema = pyfunc_model.signature(CFG).inputs
    data = png()
    text = base64.b64encode(data).decode()
    for body in (
        {"dataframe_split": {"columns": ["image"], "data": [[text]]}},
        {"dataframe_records": [{"image": text}]},
        {"inputs": {"image": [text]}},
        {"instances": [{"image": text}]},
    ):
        frame = infer_and_parse_data(body, schema)
        assert contract.request_images(frame, Limits(), PathPolicy()) == [data], list(body)


def test_bytes_decode_equals_the_preprocess_stage(tmp_path) -> None:
    for blob in (png(), png(40, 30, np.uint16)):
        (tmp_path / "x.png").write_bytes(blob)
        a = images.preprocess(tmp_path / "x.png", 8, 3, (0.0, 60000.0))
        assert np.array_equal(a, images.preprocess_bytes(blob, 8, 3, (0.0, 60000.0)))


def test_limits_read_the_header_before_decoding(monkeypatch) -> None:
    huge = png_header_only(20_000, 20_000)
    assert len(huge) < 200 and header_pixels(huge) >= 400_000_000
    with pytest.raises(RequestRefused, match=r"^row 3: image of \d+ pixels exceeds the limit of 40000000"):
        Limits().check_image(huge, "row 3")
    assert header_pixels(png_header_only(300, 200)) == 60_000
    from pydicom.data import get_testdata_file

    ct = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    assert header_pixels(ct) == 128 * 128
    with pytest.raises(RequestRefused, match="^row 0: not a PNG, JPEG, TIFF, BMP, WebP, GIF or DICOM image$"):
        Limits().check_image(b"root:x:0:0:root:/root:/bin/bash\n", "row 0")
    with pytest.raises(RequestRefused, match="^row 0: image of 101 bytes exceeds the limit of 100 "):
        Limits(image_bytes=100).check_image(b"\0" * 101, "row 0")
    with pytest.raises(RequestRefused, match="request of 3 rows exceeds the limit of 2"):
        contract.request_images(pd.DataFrame({"image": [png()] * 3}), Limits(rows=2), PathPolicy())
    monkeypatch.setenv("MEDPIPE_SERVING_MAX_ROWS", "7")
    assert Limits.from_env().rows == 7
    monkeypatch.setenv("MEDPIPE_SERVING_MAX_PIXELS", "lots")
    with pytest.raises(ConfigError, match="MEDPIPE_SERVING_MAX_PIXELS='lots' must be a positive integer"):
        Limits.from_env()


def test_paths_refused_identically_whatever_is_on_disk(tmp_path) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "ok.png").write_bytes(png())
    os.mkfifo(root / "fifo")
    (root / "escape").symlink_to("/etc/passwd")
    policy = PathPolicy((os.path.realpath(root),))
    bad = [
        "/etc/passwd",
        "/etc/nonexistent.png",
        str(root / "missing.png"),
        str(root / "../root/../../etc/passwd"),
    ]
    bad += [str(root / "fifo"), "/dev/zero", str(root / "sub"), str(root / "escape"), "", "a\0b"]
    frame = pd.DataFrame({"path": bad})
    messages = set()
    for i in range(len(bad)):
        with pytest.raises(RequestRefused) as err:
            contract.request_images(frame.iloc[[i]].reset_index(drop=True), Limits(), policy)
        messages.add(str(err.value))
    assert messages == {f"row 0: {REFUSED}"}
    assert contract.request_images(pd.DataFrame({"path": [str(root / "ok.png")]}), Limits(), policy) == [
        png()
    ]
    assert PathPolicy.from_env({}) == PathPolicy()  # no roots, no paths
    env = {ENV_ROOTS: f"{root}:", MLFLOW_SERVING_ENV: "true"}
    assert PathPolicy.from_env(env) == PathPolicy()  # the scoring server ignores the roots...
    assert PathPolicy.from_env(env | {ENV_IN_SERVER: "1"}).roots == (
        os.path.realpath(root),
    )  # ...unless opted in


def test_pyfunc_answers_one_line_refusals_and_the_contract_numbers(monkeypatch) -> None:
    model = pyfunc_model.MedpipeModel()
    model.predictor = Predictor(MeanModel(), CFG)
    blob = png()
    out = model.predict(None, pd.DataFrame({"image": [blob, blob]}))
    expect = images.preprocess_bytes(blob, 8, 3).mean() / 255
    assert list(out.columns) == ["p_neg", "p_pos", "label"] and np.allclose(out["p_pos"], expect)
    monkeypatch.setenv(MLFLOW_SERVING_ENV, "true")
    monkeypatch.setenv(ENV_ROOTS, "/")
    with pytest.raises(pyfunc_model.ScoringRefused) as err:
        model.predict(None, pd.DataFrame({"path": ["/etc/passwd"]}))
    err.value.message = (
        f"Failed to predict data '{pd.DataFrame({'path': ['x']})}'. \nError: {err.value.message}"
    )
    answer = json.loads(err.value.serialize_as_json())  # what the scoring server sends back
    assert answer["message"] == f"row 0: {REFUSED}" and answer["error_code"] == "BAD_REQUEST"
    assert "stack_trace" not in answer
    with pytest.raises(pyfunc_model.ScoringRefused, match=r"^row 1: not a decodable image \("):
        model.predict(None, pd.DataFrame({"image": [blob, png_header_only(30, 30)]}))
    model.predictor = Predictor(None, CFG)  # a crash inside the model: one line, no traceback
    with pytest.raises(pyfunc_model.ScoringRefused) as err:
        model.predict(None, pd.DataFrame({"image": [blob]}))
    assert json.loads(err.value.serialize_as_json())["message"] == pyfunc_model.INTERNAL


def test_versions_that_took_paths_get_a_clear_line() -> None:
    pyfunc_model.check_contract(["image", "path"], "models:/m/2")
    with pytest.raises(Exception, match=r"models:/m/1 was registered before medpipe models took image bytes"):
        pyfunc_model.check_contract(["path"], "models:/m/1")


def test_predict_cli_reads_files_and_dicom_as_bytes(tmp_path) -> None:
    from helpers.dicom_films import film
    from pydicom.data import get_testdata_file

    from pipeline.cli.predict import predict_files

    (tmp_path / "a.png").write_bytes(png())
    (tmp_path / "b.dcm").write_bytes(Path(get_testdata_file("CT_small.dcm")).read_bytes())
    rgb = cv2.imdecode(np.frombuffer(png(), np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
    (tmp_path / "c.dcm").write_bytes(film(np.ascontiguousarray(rgb), photometric="RGB"))  # a.png's pixels
    (tmp_path / "notes.txt").write_text("x")
    predictor = Predictor(MeanModel(), CFG)
    table = predict_files(predictor, [str(tmp_path / "a.png")])
    assert table["path"].tolist() == [str(tmp_path / "a.png")] and 0 < table["p_pos"][0] < 1
    folder = predict_files(predictor, [str(tmp_path)]).set_index(
        "path"
    )  # what `medpipe predict <folder>` prints
    assert [Path(p).name for p in folder.index] == ["a.png", "b.dcm", "c.dcm"]
    assert folder.loc[str(tmp_path / "c.dcm"), "p_pos"] == folder.loc[str(tmp_path / "a.png"), "p_pos"]
    assert 0 < folder.loc[str(tmp_path / "b.dcm"), "p_pos"] < 1 and folder["label"].notna().all()


def test_pillow_headers_count_pixels_too() -> None:
    tiff = cv2.imencode(".tiff", np.zeros((30, 20), np.uint8))[1].tobytes()
    jpeg = cv2.imencode(".jpg", np.zeros((30, 20, 3), np.uint8))[1].tobytes()
    assert header_pixels(tiff) == header_pixels(jpeg) == 600
    big_jpeg = jpeg.replace(b"\xff\xc0\x00\x11\x08\x00\x1e\x00\x14", b"\xff\xc0\x00\x11\x08\xff\xff\xff\xff")
    with pytest.raises(RequestRefused, match=r"^row 0: image of over 178956970 pixels exceeds the limit"):
        Limits().check_image(big_jpeg, "row 0")
