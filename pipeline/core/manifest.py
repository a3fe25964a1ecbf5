"""Manifest schema shared by all stages.

A manifest is a CSV with one row per image. Paths are relative to the project root
(the directory holding dvc.yaml), so manifests stay valid in a fresh clone or a worktree.

Columns by stage:
- ingest   (data/manifests/raw.csv): path, bytes, sha256
- regroup  (canonical): path, bytes, sha256, label, class_name, patient_id, x, y, source_split
           (+ adapter extras such as tumour_type, magnification)
- validate adds: height, width, channels, dtype, warning ("" or why a kept file is odd: trailing
           bytes after its end marker, EXIF orientation applied)
- split    writes one manifest per split with a `split` column
- balance  (train only) adds: source_path (original image of an augmented row), augmented
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from pipeline.core.errors import DataError

RAW_COLUMNS = ["path", "bytes", "sha256"]
CANONICAL_COLUMNS = [*RAW_COLUMNS, "label", "class_name", "patient_id", "x", "y", "source_split"]
DECODED_COLUMNS = ["height", "width", "channels", "dtype", "warning"]
SPLITS = ("train", "val", "test")
NA_VALUES = [""]  # the one spelling of "missing" in a manifest; pass with keep_default_na=False

_DTYPES = {
    "path": "string",
    "sha256": "string",
    "class_name": "string",
    "patient_id": "string",
    "source_split": "string",
    "source_path": "string",
    "split": "string",
    "dtype": "string",
    "warning": "string",
    "bytes": "Int64",
    "label": "Int64",
    "x": "Int64",
    "y": "Int64",
    "height": "Int64",
    "width": "Int64",
    "channels": "Int64",
}


def read(path: str | Path, required: list[str] | None = None) -> pd.DataFrame:
    """Read a manifest CSV with stable dtypes; check required columns are present."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"manifest {path} not found; run the stage that writes it (dvc repro)")
    header = pd.read_csv(path, nrows=0).columns
    dtypes = {c: t for c, t in _DTYPES.items() if c in header}
    # Only an empty field is missing: names like NA.png, None.png, null.png and a class folder
    # called None are data (pandas' default would turn them into NA and quarantine the image).
    df = pd.read_csv(path, dtype=dtypes, keep_default_na=False, na_values=NA_VALUES)
    missing = [c for c in (required or []) if c not in df.columns]
    if missing:
        raise DataError(f"manifest {path} lacks column(s) {', '.join(missing)}")
    return df


def write(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a manifest CSV atomically (temp file then rename), rows in a stable order."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    df.to_csv(tmp, index=False)
    tmp.replace(path)
    return path


def write_json(obj: object, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
    tmp.replace(path)
    return path


def read_json(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} not found; run the stage that writes it (dvc repro)")
    return json.loads(path.read_text())


def label_map(df: pd.DataFrame) -> dict[str, str]:
    """{label index as str: class name} from a canonical manifest."""
    pairs = df[["label", "class_name"]].drop_duplicates().sort_values("label")
    return {str(int(r.label)): str(r.class_name) for r in pairs.itertuples()}
