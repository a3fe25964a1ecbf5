"""`mlflow models serve -m models:/<name>@champion --env-manager local` answers real HTTP requests:
image bytes (base64 in JSON) score as the evaluate stage did, DICOM bytes as the same pixels in a
PNG; server paths, oversized images and
bodies are refused with one line each (the same line whether a file exists or not), and the server
still answers afterwards. One server start for every case."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import cv2
import numpy as np
import pandas as pd
from helpers.dicom_films import film
from helpers.registered_champion import NAME

from pipeline.serving.paths import REFUSED


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(url: str, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"mlflow models serve exited with {proc.returncode}:\n{proc.stdout.read()[-3000:]}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"{url} not ready after {timeout}s")


def _post(port: int, payload: dict | bytes) -> tuple[int, dict]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/invocations", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=300) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _split(column: str, values: list) -> dict:
    return {"dataframe_split": {"columns": [column], "data": [[v] for v in values]}}


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height (IHDR) but carries almost no pixel data."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = chunk(b"IDAT", zlib.compress(b"\0" * 64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + idat + chunk(b"IEND", b"")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _dicom_twin(png: bytes) -> bytes:
    """A DICOM file holding exactly the pixels of `png` (RGB, or MONOCHROME2 for a grey PNG)."""
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    if img.ndim == 2:
        return film(img, photometric="MONOCHROME2")
    return film(np.ascontiguousarray(img[:, :, 2::-1]), photometric="RGB")  # BGR(A) -> RGB


def test_served_champion_takes_bytes_and_refuses_server_paths(registered_champion_project, tmp_path) -> None:  # noqa: F811
    root, _ = registered_champion_project
    table = pd.read_csv(root / "reports/eval/predictions.csv").query("split == 'test'").head(10)
    fifo = tmp_path / "fifo.png"
    os.mkfifo(fifo)
    existing = str(root / table["path"].iloc[0])  # a real image on the server's disk
    server_paths = ["/etc/passwd", "/etc/nonexistent.png", "../../../../../../etc/passwd", existing]
    server_paths += [
        f"{root}/images/../../../../etc/shadow",
        str(fifo),
        "/dev/zero",
        str(root),
        "/proc/self/environ",
    ]
    port = _free_port()
    cmd = [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{NAME}@champion"]
    cmd += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"]
    env = dict(os.environ, MEDPIPE_SERVING_PATH_ROOTS="/")  # roots set: the scoring server still refuses
    proc = subprocess.Popen(
        cmd,
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        _wait_ready(f"http://127.0.0.1:{port}/ping", proc)
        refusals = [_post(port, _split("path", [p])) for p in server_paths]
        huge = _post(port, _split("image", [_b64(_png_header_only(20_000, 20_000))]))
        body = json.dumps(_split("image", [_b64(os.urandom(150 * 2**20))])).encode()
        assert len(body) > 200 * 10**6
        big = _post(port, body)
        del body
        images = [(root / p).read_bytes() for p in table["path"]]
        status, answer = _post(port, _split("image", [_b64(b) for b in images]))
        records = [{"image": _b64(b)} for b in images[:3]]
        status_records, by_records = _post(port, {"dataframe_records": records})
        status_dicom, by_dicom = _post(port, _split("image", [_b64(_dicom_twin(b)) for b in images[:3]]))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    assert {code for code, _ in refusals} == {400}
    assert {reply["message"] for _, reply in refusals} == {f"row 0: {REFUSED}"}  # no existence oracle
    assert huge[0] == 400 and huge[1]["message"].startswith(
        "row 0: image of 400000000 pixels exceeds the limit"
    )
    assert big[0] == 400 and big[1]["message"] == (
        f"row 0: image of {150 * 2**20} bytes exceeds the limit of {32 * 2**20} (MEDPIPE_SERVING_MAX_IMAGE_BYTES)"
    )
    for _, reply in [*refusals, huge, big]:
        assert set(reply) <= {"error_code", "message", "sqlstate", "error_class"}, reply  # no stack_trace
        assert "\n" not in reply["message"] and "root:" not in reply["message"]
    assert status == 200 and status_records == 200  # the server answers after every refusal
    rows = pd.DataFrame(answer["predictions"])
    assert list(rows.columns) == ["p_non_idc", "p_idc", "label"] and len(rows) == len(table)
    assert np.abs(rows["p_idc"].to_numpy() - table["p_idc"].to_numpy()).max() < 1e-4
    assert (rows["label"].to_numpy() == table["predicted"].to_numpy()).all()
    by_records = pd.DataFrame(by_records["predictions"])
    assert np.abs(by_records["p_idc"].to_numpy() - rows["p_idc"].head(3).to_numpy()).max() < 1e-6
    assert status_dicom == 200, by_dicom  # DICOM bytes score as the same pixels sent as PNG
    by_dicom = pd.DataFrame(by_dicom["predictions"])
    columns = ["p_non_idc", "p_idc"]
    dicom_diff = np.abs(by_dicom[columns].to_numpy() - rows[columns].head(3).to_numpy()).max()
    print(f"\n[figure] served DICOM vs the same pixels as PNG: max |dp| = {dicom_diff:.2e}")
    assert dicom_diff < 1e-4
    assert by_dicom["label"].tolist() == rows["label"].head(3).tolist()
