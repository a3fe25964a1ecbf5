"""IDC-scale epoch (not a test): N synthetic 50x50 IDC-layout PNGs -> preprocess stage -> one train epoch.

    python3 benchmarks/idc_epoch.py --n 277524 --batch-size 256 --out benchmarks/results/idc_epoch.json

Writes N patches as <pid>/<0|1>/<pid>_idx5_x<X>_y<Y>_class<C>.png (noise + a class signal, 995
per patient like the real set) with forked workers, splits them by patient (70/15/15) into the
manifests the preprocess stage reads, then times the stages' own run(): preprocess (decode +
resize once into data/preprocessed) and train (train.epochs 2, baseline_cnn, weights none) under
whatever Keras backend and device are there (the GPU host: KERAS_BACKEND=jax). Epoch 2's training
part (train_summary's steady-state img/s: epoch 1, with compilation, left out; validation
excluded) is the figure for the #10 goal (<= 10 s on an H100); the stage's wall time (both
epochs, compilation, validation, saving) and preprocess are reported beside it. Needs no TensorFlow, dvc, GX, MLflow or Prefect.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PER_PATIENT = 995


def _write_range(job: tuple[str, int, int]) -> list[tuple[str, int, str]]:
    import cv2
    import numpy as np

    root, start, stop = job
    rng = np.random.default_rng(start)
    rows = []
    for i in range(start, stop):
        pid, k = f"{10000 + i // PER_PATIENT}", i % PER_PATIENT
        label = int(rng.random() < 0.28)
        img = rng.integers(60, 200, (50, 50, 3), dtype=np.uint8)
        img[10:30, 10:30, 2 if label else 1] = 230
        rel = f"{pid}/{label}/{pid}_idx5_x{50 * (k % 40)}_y{50 * (k // 40)}_class{label}.png"
        path = Path(root) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), img)
        rows.append((str(path), label, pid))
    return rows


def write_dataset(root: Path, n: int) -> list[tuple[str, int, str]]:
    step = 4096
    jobs = [(str(root), i, min(i + step, n)) for i in range(0, n, step)]
    with ProcessPoolExecutor(os.cpu_count(), mp_context=get_context("fork")) as pool:
        return [row for part in pool.map(_write_range, jobs) for row in part]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=277_524)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--work", type=Path, default=Path("/tmp/medpipe-idc-epoch"))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/out/idc_epoch.json")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    import pandas as pd

    from pipeline import config
    from pipeline.stages import preprocess, train

    work = args.work.resolve()
    t0 = time.perf_counter()
    rows = write_dataset(work / "raw", args.n)
    write_s = time.perf_counter() - t0
    df = pd.DataFrame(rows, columns=["path", "label", "patient_id"])
    patients = sorted(df["patient_id"].unique())
    cut1, cut2 = int(len(patients) * 0.7), int(len(patients) * 0.85)
    part = {p: ("train" if i < cut1 else "val" if i < cut2 else "test") for i, p in enumerate(patients)}
    for d in ("balanced", "splits", "interim"):
        (work / d).mkdir(parents=True, exist_ok=True)
    for name, sub in (("train", "balanced"), ("val", "splits"), ("test", "splits")):
        df[df["patient_id"].map(part) == name].to_csv(work / sub / f"{name}.csv", index=False)
    (work / "interim/labels.json").write_text(
        json.dumps({"classes": ["0", "1"], "positive": "1", "format": "idc"})
    )
    cfg = config.from_dict(
        {
            "preprocess": {"image_size": 50, "channels": 3},
            "train": {"epochs": 2, "batch_size": args.batch_size, "early_stopping_patience": 5},
        }
    )
    pre = work / "preprocessed"
    t0 = time.perf_counter()
    preprocess.run(cfg, {"balanced": work / "balanced", "splits": work / "splits"}, {"preprocessed": pre})
    pre_s = time.perf_counter() - t0
    outs = {"model": work / "models", "history": work / "history.csv", "checkpoints": work / "checkpoints"}
    t0 = time.perf_counter()
    train.run(
        cfg,
        {"preprocessed": pre, "balanced": work / "balanced", "labels": work / "interim/labels.json"},
        outs,
    )
    train_s = time.perf_counter() - t0
    summary = json.loads((outs["model"] / "train_summary.json").read_text())
    n_train = summary["n_train"]
    epoch_train_s = (
        n_train / summary["train_images_per_second"] if summary["train_images_per_second"] else None
    )
    result = {
        "n": args.n,
        "n_train": n_train,
        "batch_size": args.batch_size,
        "devices": summary.get("devices"),
        "precision": summary.get("precision"),
        "backend": summary.get("backend"),
        "write_pngs_s": round(write_s, 1),
        "preprocess_s": round(pre_s, 1),
        "preprocess_img_s": round(args.n / pre_s),
        "train_stage_wall_s": round(train_s, 1),
        "epoch2_train_part_s": round(epoch_train_s, 2) if epoch_train_s else None,
        "train_img_s": summary["train_images_per_second"],
        "date": time.strftime("%Y-%m-%d"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
