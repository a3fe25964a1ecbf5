"""The pixels of chosen manifest rows, as the champion sees them (uint8, its size and channels).

Taken from the preprocess stage's arrays (data/preprocessed/<split>.npy, row-aligned with
<split>.csv) when their size, channels and intensity window are the champion's and the row's
bytes are the ones preprocessed (same path AND sha256); only the rest are decoded, with
pipeline.core.images at the champion's size (arrays.build.decode_all). Never re-decodes the rest.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import arrays
from pipeline.arrays.build import decode_all
from pipeline.core.errors import DataError

log = logging.getLogger(__name__)


class ArrayIndex:
    """(path, sha256) -> (split array, row) over the preprocessed splits whose geometry matches."""

    def __init__(self, root: Path | None, label_map: dict):
        self.size = int(label_map["image_size"])
        self.channels = int(label_map["channels"])
        window = label_map.get("window")
        self.window = tuple(window) if window else None
        self.splits: dict[str, np.ndarray] = {}
        self.where: dict[tuple[str, str], tuple[str, int]] = {}
        if root is None or not (Path(root) / arrays.META).is_file():
            return
        meta = arrays.read_meta(root)
        have = (int(meta["image_size"]), int(meta["channels"]), meta.get("window"))
        if have[:2] != (self.size, self.channels) or (have[2] and list(have[2]) != list(window or [])):
            log.info(
                "preprocessed arrays are %s, the champion's input %s: decoding",
                have,
                (self.size, self.channels),
            )
            return
        for name in meta["splits"]:
            split = arrays.load_split(root, name, meta, ["path"])
            rows = split.rows
            keep = ~rows["augmented"].fillna(False).astype(bool) if "augmented" in rows.columns else None
            sha = rows["sha256"].astype(str) if "sha256" in rows.columns else pd.Series("", index=rows.index)
            self.splits[name] = split.images
            for i, key in enumerate(zip(rows["path"].astype(str), sha, strict=True)):
                if keep is None or keep.iat[i]:
                    self.where.setdefault(key, (name, i))

    def gather(self, rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(images (N, S, S, C) uint8, ok mask): rows found in the arrays, the others decoded; a row
        whose file cannot be read is left out (ok False) with a warning, never an exception."""
        keys = list(zip(rows["path"].astype(str), rows["sha256"].astype(str), strict=True))
        out = np.zeros((len(keys), self.size, self.size, self.channels), np.uint8)
        ok = np.ones(len(keys), bool)
        missing = []
        by_split: dict[str, list[tuple[int, int]]] = {}
        for i, key in enumerate(keys):
            hit = self.where.get(key)
            if hit is None:
                missing.append(i)
            else:
                by_split.setdefault(hit[0], []).append((i, hit[1]))
        for name, pairs in by_split.items():
            dst, src = np.array(pairs).T
            order = np.argsort(src, kind="stable")  # memory-mapped reads in file order
            out[dst[order]] = self.splits[name][src[order]]
        for i in missing:
            try:
                out[i] = decode_all([keys[i][0]], self.size, self.channels, self.window)[0]
            except DataError as exc:
                log.warning("%s; left out of the embedding / scoring", exc)
                ok[i] = False
        if missing:
            log.info("decoded %d of %d images (not in the preprocessed arrays)", len(missing), len(keys))
        return out, ok
