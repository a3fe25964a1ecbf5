"""`mlflow models serve -m models:/<name>@champion --env-manager local` answers a real HTTP request."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pandas as pd
from helpers.registered_champion import NAME


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


def test_served_champion_answers_http(registered_champion_project) -> None:  # noqa: F811
    root, _ = registered_champion_project
    table = pd.read_csv(root / "reports/eval/predictions.csv").query("split == 'test'").head(10)
    port = _free_port()
    cmd = [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{NAME}@champion"]
    cmd += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"]
    proc = subprocess.Popen(
        cmd,
        cwd=root,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        _wait_ready(f"http://127.0.0.1:{port}/ping", proc)
        paths = [str(root / p) for p in table["path"]]
        body = json.dumps({"dataframe_split": {"columns": ["path"], "data": [[p] for p in paths]}}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=120) as resp:
            answer = json.loads(resp.read())
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    rows = pd.DataFrame(answer["predictions"])
    assert list(rows.columns) == ["p_non_idc", "p_idc", "label"] and len(rows) == len(table)
    assert np.abs(rows["p_idc"].to_numpy() - table["p_idc"].to_numpy()).max() < 1e-4
    assert (rows["label"].to_numpy() == table["predicted"].to_numpy()).all()
