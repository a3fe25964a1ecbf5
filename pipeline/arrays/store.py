"""Reading the preprocessed layout: meta.json + row-aligned <split>.npy / <split>.csv."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core import manifest
from pipeline.core.errors import DataError

SPLITS = ("train", "val", "test")
META = "meta.json"
LAYOUT_VERSION = 1
_RERUN = "re-run the preprocess stage (dvc repro preprocess)"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Split:
    """One split: memory-mapped uint8 images (N, S, S, C) and their manifest rows, row-aligned."""

    name: str
    images: np.ndarray
    rows: pd.DataFrame

    @property
    def labels(self) -> np.ndarray:
        return self.rows["label"].to_numpy(dtype=np.int64, na_value=-1)


def read_meta(root: Path) -> dict:
    """meta.json of a preprocessed directory; DataError when missing or not this layout."""
    path = Path(root) / META
    if not path.is_file():
        raise DataError(f"{path} not found; {_RERUN}")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{path} is not valid JSON ({exc}); {_RERUN}") from exc
    if meta.get("layout") != LAYOUT_VERSION or not {"image_size", "channels", "splits"} <= set(meta):
        raise DataError(f"{path} is not a medpipe preprocessed layout v{LAYOUT_VERSION}; {_RERUN}")
    return meta


def load_split(root: Path, name: str, meta: dict | None = None, required: list[str] | None = None) -> Split:
    """Map <name>.npy read-only and read <name>.csv; checks shape, dtype and row alignment."""
    root = Path(root)
    meta = meta or read_meta(root)
    npy, csv = root / f"{name}.npy", root / f"{name}.csv"
    if name not in meta["splits"] or not npy.is_file():
        raise DataError(f"{npy} not found; {_RERUN}")
    rows = manifest.read(csv, required=required or ["path", "label"])
    try:
        images = np.load(npy, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise DataError(f"cannot map {npy} ({exc}); {_RERUN}") from exc
    size, channels = int(meta["image_size"]), int(meta["channels"])
    expected = (len(rows), size, size, channels)
    if images.dtype != np.uint8 or images.shape != expected:
        raise DataError(
            f"{npy} holds {images.dtype} {images.shape}, expected uint8 {expected} "
            f"(rows of {csv.name}, meta.json); {_RERUN}"
        )
    return Split(name, images, rows)
