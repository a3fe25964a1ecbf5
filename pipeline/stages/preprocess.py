"""preprocess stage: balanced train + val/test manifests -> data/preprocessed (uint8 arrays, once).

Inputs: balanced (dir with train.csv), splits (dir with val.csv, test.csv), optional intensity
(validate's intensity.json: {"window": [lo, hi] | null}; missing = no window, 8-bit data).
Output: preprocessed (dir): train/val/test .npy (uint8 N x S x S x C) + the row-aligned manifests
(copied byte-for-byte) + meta.json (image_size, channels, window, per-split rows and sha256).
Deterministic: the same inputs give the same bytes. Written to <out>.tmp and renamed at the end,
so a failed run leaves no half-written directory. Train and evaluate read only this directory.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

from pipeline.arrays.build import write_images
from pipeline.arrays.store import LAYOUT_VERSION, META, file_sha256
from pipeline.config import Config
from pipeline.core import manifest
from pipeline.core.errors import DataError

log = logging.getLogger(__name__)


def read_window(path: Path | None) -> list[float] | None:
    """The dataset-level intensity window from validate's intensity.json (None when absent/null)."""
    if path is None or not Path(path).is_file():
        return None
    window = manifest.read_json(path).get("window")
    if window is None:
        return None
    if not (isinstance(window, list) and len(window) == 2 and float(window[0]) < float(window[1])):
        raise DataError(f"{path}: 'window' must be [lo, hi] with lo < hi or null, got {window!r}")
    return [float(window[0]), float(window[1])]


def sources(inputs: dict[str, Path]) -> dict[str, Path]:
    return {
        "train": Path(inputs["balanced"]) / "train.csv",
        "val": Path(inputs["splits"]) / "val.csv",
        "test": Path(inputs["splits"]) / "test.csv",
    }


def run(cfg: Config, inputs: dict[str, Path], outputs: dict[str, Path]) -> dict:
    size, channels = cfg.preprocess.image_size, cfg.preprocess.channels
    window = read_window(inputs.get("intensity"))
    out = Path(outputs["preprocessed"])
    staging = out.with_name(out.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    started = time.perf_counter()
    splits, rates = {}, {}
    try:
        for name, src in sources(inputs).items():
            rows = manifest.read(src, required=["path", "label"])
            csv, npy = staging / f"{name}.csv", staging / f"{name}.npy"
            shutil.copyfile(src, csv)  # byte-for-byte: its sha256 still identifies the split
            win = tuple(window) if window else None
            rates[name] = write_images(rows["path"].astype(str).tolist(), npy, size, channels, win, desc=name)
            splits[name] = {"rows": len(rows), "npy_sha256": file_sha256(npy), "csv_sha256": file_sha256(csv)}
        meta = {
            "layout": LAYOUT_VERSION,
            "image_size": size,
            "channels": channels,
            "window": window,
            "dtype": "uint8",
            "splits": splits,
        }
        (staging / META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    seconds = time.perf_counter() - started
    total = sum(s["rows"] for s in splits.values())
    log.info(
        "preprocess: %s images at %dx%dx%d in %.1f s (%.0f img/s) -> %s",
        {k: v["rows"] for k, v in splits.items()},
        size,
        size,
        channels,
        seconds,
        total / max(seconds, 1e-9),
        out,
    )
    return {
        "images": total,
        "seconds": round(seconds, 2),
        "img_per_s": {k: round(v) for k, v in rates.items()},
    }
