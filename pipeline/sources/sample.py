"""The embedded default dataset (data.source: sample): deterministic synthetic patches in the
exact Kaggle IDC layout `<pid>/<0|1>/<pid>_idx5_x<X>_y<Y>_class<C>.png`.

Each patient is a slide: patches tile a blob-shaped tissue region on a grid with the IDC
convention x, y = top-left corner (multiples of the patch size, plus 1). Positives form one
spatially clustered "tumour region"; the per-patient positive rate varies (Beta distributed) and
is rescaled so the overall rate is close to `positive_fraction`. Same SampleConfig -> same bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from pipeline.config import SampleConfig
from pipeline.core.errors import ConfigError
from pipeline.sources.mirror import Mirror, Prepare, SyncSummary
from pipeline.sources.sample_tiles import paint_patch, patient_stain

log = logging.getLogger(__name__)
GENERATOR_VERSION = 1  # bump when the images change for the same SampleConfig
PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 6]


@dataclass(frozen=True)
class Patch:
    patient_id: str
    x: int
    y: int
    label: int

    @property
    def relpath(self) -> str:
        p, c = self.patient_id, self.label
        return f"{p}/{c}/{p}_idx5_x{self.x}_y{self.y}_class{c}.png"


def _check(cfg: SampleConfig) -> None:
    if not 1 <= cfg.patients <= 90000 or cfg.patches_per_patient < 1 or cfg.image_size < 8:
        raise ConfigError("data.sample needs 1..90000 patients, patches_per_patient >= 1, image_size >= 8")
    if not 0.0 <= cfg.positive_fraction <= 1.0:
        raise ConfigError(f"data.sample.positive_fraction is {cfg.positive_fraction}; use a value in [0, 1]")


def _positive_counts(rng: np.random.Generator, sizes: np.ndarray, fraction: float) -> np.ndarray:
    """Per-patient positive counts: varied rates whose total is close to fraction * sum(sizes)."""
    k = 2.5
    rates = rng.beta(max(fraction * k, 1e-3), max((1 - fraction) * k, 1e-3), len(sizes))
    target, scale = fraction * sizes.sum(), 1.0
    for _ in range(5):
        expected = np.clip(rates * scale, 0, 0.95) * sizes
        scale *= target / max(expected.sum(), 1e-9)
    return np.rint(np.clip(rates * scale, 0, 0.95 if fraction < 1 else 1.0) * sizes).astype(int)


def _slide_cells(rng: np.random.Generator, n: int, n_pos: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, col) grid cells of n tissue patches and a boolean tumour mask clustered in space."""
    side = math.ceil(math.sqrt(n) * 1.6) + 2
    rows, cols = np.divmod(np.arange(side * side), side)
    centre = side / 2 + rng.uniform(-1, 1, 2)
    aspect, theta = rng.uniform(0.6, 1.6), rng.uniform(0, math.pi)
    dr, dc = rows - centre[0], cols - centre[1]
    u = (dr * math.cos(theta) + dc * math.sin(theta)) / aspect
    v = (-dr * math.sin(theta) + dc * math.cos(theta)) * aspect
    tissue = np.argsort(np.hypot(u, v) + rng.normal(0, 0.6, side * side), kind="stable")[:n]
    rows, cols = rows[tissue], cols[tissue]
    seed_cell = int(rng.integers(0, n))
    dist = np.hypot(rows - rows[seed_cell], cols - cols[seed_cell]) + rng.normal(0, 0.8, n)
    tumour = np.zeros(n, bool)
    tumour[np.argsort(dist, kind="stable")[:n_pos]] = True
    order = np.lexsort((cols, rows))
    return np.stack([rows[order], cols[order]], 1), tumour[order]


def layout(cfg: SampleConfig) -> list[Patch]:
    """Every patch of the sample dataset (deterministic in cfg)."""
    _check(cfg)
    rng = np.random.default_rng(cfg.seed)
    ids = np.sort(rng.choice(np.arange(10000, 100000), cfg.patients, replace=False))
    sizes = np.maximum(4, np.rint(cfg.patches_per_patient * rng.uniform(0.75, 1.25, cfg.patients))).astype(
        int
    )
    positives = _positive_counts(rng, sizes, cfg.positive_fraction)
    patches: list[Patch] = []
    for pid, n, n_pos in zip(ids, sizes, positives, strict=True):
        cells, tumour = _slide_cells(rng, int(n), int(n_pos))
        off_r, off_c = rng.integers(0, 30, 2)
        step = cfg.image_size
        for (r, c), pos in zip(cells, tumour, strict=True):
            patches.append(
                Patch(str(pid), int((c + off_c) * step + 1), int((r + off_r) * step + 1), int(pos))
            )
    return patches


def generate(cfg: SampleConfig) -> Iterator[tuple[Patch, bytes]]:
    """Yield (patch, PNG bytes), patient by patient, each patient with its own seeded RNG and stain."""
    patches = layout(cfg)
    by_patient: dict[str, list[Patch]] = {}
    for patch in patches:
        by_patient.setdefault(patch.patient_id, []).append(patch)
    seeds = np.random.SeedSequence([cfg.seed, GENERATOR_VERSION]).spawn(len(by_patient))
    for seed, (_, items) in zip(seeds, by_patient.items(), strict=True):
        rng = np.random.default_rng(seed)
        stain = patient_stain(rng)
        for patch in items:
            ok, png = cv2.imencode(".png", paint_patch(rng, patch.label, stain, cfg.image_size), PNG_PARAMS)
            if not ok:
                raise RuntimeError("OpenCV could not encode a PNG")
            yield patch, png.tobytes()


def write(cfg: SampleConfig, dest: Path) -> list[Path]:
    """Write the whole sample dataset under dest (for tests and demos); returns the file paths."""
    paths = []
    for patch, png in generate(cfg):
        path = dest / patch.relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
        paths.append(path)
    return paths


def sync_sample(cfg: SampleConfig, raw_dir: Path, prepare: Prepare | None = None) -> SyncSummary:
    """Generate the sample into raw_dir, writing only files whose bytes changed."""
    extra = {"generator_version": GENERATOR_VERSION, "sample": dataclasses.asdict(cfg)}
    with Mirror(raw_dir, kind="sample", source="sample", extra=extra, prepare=prepare) as mirror:
        if mirror.same_source():
            log.info("sample dataset already generated with these params")
            mirror.keep_all()
            return mirror.commit()
        total = len(layout(cfg))
        for patch, png in tqdm(generate(cfg), total=total, desc="ingest: sample", unit="img", disable=None):
            sha = hashlib.sha256(png).hexdigest()
            if not mirror.keep_if_unchanged(patch.relpath, f"sha256:{sha}"):
                mirror.staged_path(patch.relpath).write_bytes(png)
                mirror.add(patch.relpath, f"sha256:{sha}", sha)
        return mirror.commit()
