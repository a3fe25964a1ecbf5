"""Validate-stage inputs: tiny synthetic IDC-layout PNGs under raw/, their canonical manifest rows,
and one call that runs the stage in the working directory."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from pipeline import config
from pipeline.core import manifest
from pipeline.stages import validate

CLASSES = ["0", "1"]
LABELS = {"format": "idc", "classes": CLASSES, "positive": "1"}


def encode(img: np.ndarray, ext: str = ".png") -> bytes:
    ok, buf = cv2.imencode(ext, img)
    assert ok, ext
    return buf.tobytes()


def patch(seed: int, shape: tuple[int, ...] = (50, 50, 3), dtype: type = np.uint8) -> np.ndarray:
    high = 65535 if dtype == np.uint16 else 255
    return np.random.default_rng(seed).integers(0, high, shape, dtype=dtype)


def row_for(path: str, label: int, patient: str, x: int, y: int = 0, sha: str | None = None) -> dict:
    """A canonical manifest row; sha256/bytes from the file as ingest would record them."""
    p = Path(path)
    data = p.read_bytes() if p.is_file() else b""
    return {
        "path": path,
        "bytes": len(data),
        "sha256": sha or hashlib.sha256(data).hexdigest(),
        "label": label,
        "class_name": CLASSES[label] if label in (0, 1) else "?",
        "patient_id": patient,
        "x": x,
        "y": y,
        "source_split": None,
    }


def add_file(data: bytes, name: str, label: int = 0, patient: str = "900", x: int = 0) -> dict:
    """Write bytes under raw/ (relative to cwd) and return its manifest row."""
    path = Path("raw") / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return row_for(str(path), label, patient, x)


def make_valid(n: int = 12, patients: int = 3) -> list[dict]:
    """n valid 50x50 RGB PNGs in IDC naming, alternating classes, spread over patients."""
    rows = []
    for i in range(n):
        pid, label = str(10 + i % patients), i % 2
        rows.append(
            add_file(encode(patch(i)), f"{pid}_idx5_x{i * 50}_y0_class{label}.png", label, pid, i * 50)
        )
    return rows


def io_paths(root: Path = Path(".")) -> tuple[dict[str, Path], dict[str, Path]]:
    inputs = {"manifest": root / "interim/manifest.csv", "labels": root / "interim/labels.json"}
    outputs = {
        "validated": root / "interim/validated.csv",
        "quarantine": root / "reports/validation/quarantine.csv",
        "summary": root / "reports/validation/summary.json",
        "metrics": root / "reports/validation/metrics.json",
        "docs": root / "reports/validation/data_docs",
    }
    return inputs, outputs


def write_inputs(rows: list[dict], labels: dict | None = None) -> tuple[dict[str, Path], dict[str, Path]]:
    inputs, outputs = io_paths()
    inputs["manifest"].parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(inputs["manifest"], index=False)
    inputs["labels"].write_text(json.dumps(LABELS if labels is None else labels))
    return inputs, outputs


def run_validate(rows: list[dict], **validate_params) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """Run the stage in cwd; returns (summary.json, validated.csv, quarantine.csv)."""
    inputs, outputs = write_inputs(rows)
    cfg = config.from_dict({"validate": validate_params})
    validate.run(cfg, inputs, outputs)
    summary = json.loads(outputs["summary"].read_text())
    return summary, manifest.read(outputs["validated"]), pd.read_csv(outputs["quarantine"], dtype=str)
