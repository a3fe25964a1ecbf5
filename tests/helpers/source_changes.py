"""Shared helpers (not tests): a local IDC-layout source that changes between two nightly runs.

`write_source` writes the synthetic sample (pipeline.sources.sample, Kaggle IDC layout
`<pid>/<0|1>/<pid>_idx5_x<X>_y<Y>_class<C>.png`) into a folder a project can use as data.source;
the mutations below then give the `changes` stage something to find on the next run:
  add_patients    new patients (new bytes, new patient ids)           -> added, new patients
  drop_patient    one patient's files deleted                         -> removed, patients gone
  regamma         some images re-encoded with a gamma change          -> changed bytes, intensity drift
  relabel         images moved to the other class, bytes untouched    -> relabelled (same sha256, new label)
Each returns the paths it touched, relative to the source folder. All deterministic in `seed`.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import yaml

from pipeline.config import SampleConfig
from pipeline.sources import sample

TINY = SampleConfig(patients=12, patches_per_patient=40, seed=3)


def write_source(dest: Path, cfg: SampleConfig = TINY) -> list[str]:
    """The sample dataset as files under dest (an IDC source folder)."""
    return sorted(p.relative_to(dest).as_posix() for p in sample.write(cfg, dest))


def patients(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.iterdir() if p.is_dir())


def add_patients(dest: Path, n: int, patches: int = 40, seed: int = 101) -> list[str]:
    """Write the patients of another sample seed whose ids are not in dest yet (at most n)."""
    have = set(patients(dest))
    cfg = replace(TINY, patients=n + len(have), patches_per_patient=patches, seed=seed)
    added: list[str] = []
    fresh = [p for p in sorted({patch.patient_id for patch in sample.layout(cfg)}) if p not in have][:n]
    for patch, png in sample.generate(cfg):
        if patch.patient_id in fresh:
            (dest / patch.relpath).parent.mkdir(parents=True, exist_ok=True)
            (dest / patch.relpath).write_bytes(png)
            added.append(patch.relpath)
    return sorted(added)


def drop_patient(dest: Path, patient: str | None = None) -> list[str]:
    """Delete one patient's folder (default: the last one)."""
    patient = patient or patients(dest)[-1]
    gone = sorted(p.relative_to(dest).as_posix() for p in (dest / patient).rglob("*.png"))
    shutil.rmtree(dest / patient)
    return gone


def _images(dest: Path, seed: int, n: int) -> list[Path]:
    files = sorted(dest.rglob("*.png"))
    pick = np.random.default_rng(seed).choice(len(files), size=min(n, len(files)), replace=False)
    return [files[i] for i in sorted(pick)]


def regamma(dest: Path, n: int, gamma: float = 2.2, seed: int = 0) -> list[str]:
    """Re-encode n images with intensity**gamma: same path and label, other bytes (a contrast shift)."""
    table = np.clip(255.0 * (np.arange(256) / 255.0) ** gamma, 0, 255).astype(np.uint8)
    touched = []
    for path in _images(dest, seed, n):
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        cv2.imwrite(str(path), cv2.LUT(image, table))
        touched.append(path.relative_to(dest).as_posix())
    return touched


def relabel(dest: Path, n: int, seed: int = 1) -> list[str]:
    """Move n images to the other class (IDC keeps the label in folder and name): same bytes,
    another path and label. Returns the new paths."""
    moved = []
    for path in _images(dest, seed, n):
        old = path.parent.name
        new = "1" if old == "0" else "0"
        target = path.parent.parent / new / path.name.replace(f"_class{old}.png", f"_class{new}.png")
        target.parent.mkdir(exist_ok=True)
        path.rename(target)
        moved.append(target.relative_to(dest).as_posix())
    return moved


def use_source(project: Path, dest: Path) -> None:
    """Point the project's params.yaml data.source (format idc) at dest."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["data"]["source"], params["data"]["format"] = str(dest), "idc"
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
