"""MedMNIST (v2 / MedMNIST+): one `<flag>.npz` with `{train,val,test}_images` and `_labels`.

Each image is written as PNG to `extracted/<split>/<label>/<split>_<index>.png` (paths relative to the
working directory), with bytes and sha256 of the written file, `source_split` = the official split.
MedMNIST has no patient ids: patient_id = `<split>_<index>` (one image per "patient"), so grouping by
patient is a no-op for this format. Class names follow the MedMNIST INFO table for breastmnist
(0 = malignant, 1 = normal/benign; positive = malignant, i.e. label 0) and pneumoniamnist
(0 = normal, 1 = pneumonia); other flags get "0", "1", ...
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from pipeline.config import DataConfig
from pipeline.core.errors import DataError
from pipeline.formats.base import RawFile, Regrouped, common_ignore

SPLITS = ("train", "val", "test")
KNOWN = {  # flag prefix -> (class names by label, positive class)
    "breastmnist": (["malignant", "normal_benign"], "malignant"),
    "pneumoniamnist": (["normal", "pneumonia"], "pneumonia"),
}


def class_names(stem: str, n_classes: int) -> tuple[list[str], str | None]:
    for flag, (names, positive) in KNOWN.items():
        if stem.lower().startswith(flag):
            return list(names), positive
    names = [str(i) for i in range(n_classes)]
    return names, ("1" if n_classes == 2 else None)


def load_splits(path: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{split: (images uint8 NxHxW[xC], labels N)} for the splits the file holds."""
    try:
        npz = np.load(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} is not a readable .npz ({exc}); re-download the MedMNIST file") from exc
    out = {}
    with npz:
        for split in SPLITS:
            if f"{split}_images" not in npz.files:
                continue
            if f"{split}_labels" not in npz.files:
                raise DataError(f"{path} has {split}_images but no {split}_labels")
            images, labels = npz[f"{split}_images"], npz[f"{split}_labels"]
            if labels.ndim == 2 and labels.shape[1] != 1:
                raise DataError(
                    f"{path}: {split}_labels has shape {labels.shape}; multi-label MedMNIST is not supported"
                )
            if images.dtype != np.uint8 or images.ndim not in (3, 4) or len(images) != len(labels):
                raise DataError(f"{path}: {split}_images must be uint8 NxHxW[x3] with one label per image")
            if len(labels) and labels.min() < 0:
                raise DataError(f"{path}: {split}_labels has negative labels; expected 0..n_classes-1")
            out[split] = (images, labels.reshape(-1).astype(np.int64))
    if not out:
        raise DataError(f"{path} holds none of train_images/val_images/test_images; is it a MedMNIST .npz?")
    return out


def write_png(img: np.ndarray, path: Path) -> tuple[int, str]:
    """Encode losslessly (RGB arrays are stored as RGB PNGs); return (bytes, sha256)."""
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise DataError(f"could not encode {path} as PNG")
    data = buf.tobytes()
    path.write_bytes(data)
    return len(data), hashlib.sha256(data).hexdigest()


class MedmnistAdapter:
    name = "medmnist"
    example = "pneumoniamnist.npz"

    def regroup(self, files: list[RawFile], data: DataConfig, extracted: Path) -> Regrouped:
        """Unpack the .npz found in data/raw into `extracted` (an empty folder)."""
        out = Regrouped(classes=[], positive=None, rows=[])
        npz_files = []
        for f in files:
            reason = common_ignore(f.rel, frozenset({".npz"}))
            if reason:
                out.skip(f.path, reason)
            else:
                npz_files.append(f)
        if len(npz_files) > 1:
            names = ", ".join(f.path for f in npz_files)
            raise DataError(
                f"found {len(npz_files)} .npz files ({names}); keep one MedMNIST dataset in data/raw"
            )
        if not npz_files:
            return out
        source = npz_files[0]
        splits = load_splits(source.path)
        n_classes = int(max(labels.max() for _, labels in splits.values() if len(labels)) + 1)
        out.classes, out.positive = class_names(Path(source.path).stem, n_classes)
        base = Path(os.path.relpath(extracted))
        for split, (images, labels) in splits.items():
            for label in np.unique(labels):
                (base / split / str(label)).mkdir(parents=True, exist_ok=True)
            for i in tqdm(
                range(len(images)), desc=f"extract {split}", unit="img", mininterval=2.0, disable=None
            ):
                path = base / split / str(labels[i]) / f"{split}_{i}.png"
                size, digest = write_png(images[i], path)
                out.rows.append(
                    {
                        "path": path.as_posix(),
                        "bytes": size,
                        "sha256": digest,
                        "label": int(labels[i]),
                        "class_name": out.classes[labels[i]],
                        "patient_id": f"{split}_{i}",
                        "x": None,
                        "y": None,
                        "source_split": split,
                        "source_file": source.path,
                        "format_error": None,
                    }
                )
        out.notes["patient_ids"] = "MedMNIST has no patient ids; patient_id = <split>_<index>"
        return out
