"""A project whose champion has a recorded lineage: the evaluate-stage inputs (tests/helpers/
evaluate_inputs: brightness-scoring model, 8x8 PNG patches, split manifests, preprocessed arrays)
plus data/interim/validated.csv + labels.json, a dvc.lock naming them and their objects in a local
DVC cache (.dvc/cache, DVC 3 layout), so the register run stores reproduce/dvc.lock as under `dvc
repro`. Then `change_data` makes a night: a new patient, a relabelled batch, a gamma-shifted class.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml

from helpers.evaluate_inputs import small_cfg
from helpers.registered_champion import REGISTER_IN, REGISTER_OUT, project, settings
from pipeline import config
from pipeline.core import manifest
from pipeline.stages import evaluate, preprocess, register

SPLITS = Path("data/splits")
VALIDATED = Path("data/interim/validated.csv")
LABELS = Path("data/interim/labels.json")
STAGE_IN = {
    "validated": VALIDATED,
    "splits": SPLITS,
    "preprocessed": Path("data/preprocessed"),
    "labels": LABELS,
}
STAGE_OUT = {
    "summary": Path("reports/changes.json"),
    "report": Path("reports/changes.html"),
    "dir": Path("reports/changes"),
    "headline": Path("reports/changes_headline.json"),
}


def _cache(root: Path, data: bytes, suffix: str = "") -> str:
    md5 = hashlib.md5(data).hexdigest()
    obj = root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / (md5[2:] + suffix)
    obj.parent.mkdir(parents=True, exist_ok=True)
    obj.write_bytes(data)
    return md5 + suffix


def _splits(root: Path) -> dict[str, pd.DataFrame]:
    return {s: manifest.read(root / SPLITS / f"{s}.csv") for s in ("train", "val", "test")}


def write_validated(root: Path, splits: dict[str, pd.DataFrame]) -> None:
    rows = pd.concat(list(splits.values()), ignore_index=True).drop(columns="split")
    manifest.write(rows, root / VALIDATED)
    for name, df in splits.items():
        manifest.write(df, root / SPLITS / f"{name}.csv")
    labels = {"format": "idc", "classes": ["non_idc", "idc"], "positive": "idc"}
    manifest.write_json(labels, root / LABELS)


def lock_and_cache(root: Path) -> None:
    """dvc.lock with validate's and split's outs, their objects in .dvc/cache."""
    entries = [
        {"md5": _cache(root, (root / SPLITS / f"{s}.csv").read_bytes()), "relpath": f"{s}.csv"}
        for s in ("test", "train", "val")
    ]
    lock = {
        "schema": "2.0",
        "stages": {
            "validate": {
                "outs": [{"path": str(VALIDATED), "md5": _cache(root, (root / VALIDATED).read_bytes())}]
            },
            "split": {
                "outs": [{"path": str(SPLITS), "md5": _cache(root, json.dumps(entries).encode(), ".dir")}]
            },
        },
    }
    (root / "dvc.lock").write_text(yaml.safe_dump(lock))


def build(tmp_path_factory: pytest.TempPathFactory):
    """Yield (root, registered.json record); cwd and MLFLOW_TRACKING_URI point at root meanwhile."""
    with project(tmp_path_factory, "changes") as (root, inputs, outputs):
        write_validated(root, _splits(root))
        lock_and_cache(root)
        evaluate.run(small_cfg(), inputs, outputs)
        yield root, register.run(settings(), REGISTER_IN, REGISTER_OUT)


def _gamma(src: Path, dst: Path, gamma: float) -> str:
    img = cv2.imread(str(src), cv2.IMREAD_UNCHANGED).astype(np.float64) / 255.0
    cv2.imwrite(str(dst), np.clip(255.0 * img**gamma, 0, 255).astype(np.uint8))
    return hashlib.sha256(dst.read_bytes()).hexdigest()


def change_data(root: Path, relabel: int = 3, new_images: int = 12, gamma: float = 0.35) -> dict:
    """A night's changes: `new_images` gamma-brightened copies of test images as two new patients
    (added to test), `relabel` train images of class idc relabelled non_idc (same bytes), two
    val images removed, one re-encoded in place; preprocess re-run. Returns what a correct diff
    must count (`new`: added + changed, the images the champion scores)."""
    splits = _splits(root)
    train = splits["train"]
    flip = train.index[train["class_name"] == "idc"][:relabel]
    train.loc[flip, ["class_name", "label"]] = ["non_idc", 0]
    splits["val"] = splits["val"].iloc[2:].reset_index(drop=True)
    val = splits["val"]  # one image re-encoded in place: same path, other bytes
    val.loc[0, "sha256"] = _gamma(root / val.loc[0, "path"], root / val.loc[0, "path"], 1.6)
    source = splits["test"].iloc[16 : 16 + new_images]  # patients test2, test3: both classes
    added = []
    for i, row in enumerate(source.itertuples()):
        dst = Path("images") / f"night2_{i}.png"
        sha = _gamma(root / row.path, root / dst, gamma)
        added.append({**row._asdict(), "path": str(dst), "sha256": sha, "patient_id": f"night2_{i % 2}"})
    added_df = pd.DataFrame(added).drop(columns="Index")
    splits["test"] = pd.concat([splits["test"], added_df], ignore_index=True)
    write_validated(root, splits)
    pre_cfg = config.from_dict({"preprocess": {"image_size": 8, "channels": 3}})
    preprocess.run(
        pre_cfg, {"balanced": SPLITS, "splits": SPLITS}, {"preprocessed": root / "data/preprocessed"}
    )
    counts = {"added": new_images, "removed": 2, "changed": 1, "relabelled": len(flip), "new_patients": 2}
    return counts | {"new": new_images + 1, "new_patients_scored": 3}
