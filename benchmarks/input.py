"""Input-pipeline benchmark (not a test): training img/s of the train stage's input vs in-memory arrays.

    uv run python benchmarks/input.py [--n 3000] [--size 50] [--epochs 3]

Generates N synthetic PNGs, preprocesses them into a .npy (the preprocess stage's writer), trains
baseline_cnn with each input variant for a few epochs and reports the steady-state training
throughput (first epoch, with graph tracing, left out): Keras' own in-memory numpy path vs the
train stage's ArrayBatches over the memory-mapped .npy (and over the same array in RAM).
Goal: the memmap path >= 0.9x in-memory (medians of --rounds alternated runs). Writes benchmarks/out/input.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import keras
import numpy as np
import pandas as pd

from pipeline.arrays.build import write_images
from pipeline.config import TrainConfig
from pipeline.models import build_model
from pipeline.training.data import ArrayBatches, EpochShuffle
from pipeline.training.epoch_log import EpochLog
from pipeline.training.fit import compile_model
from pipeline.training.runtime import configure

log = logging.getLogger("benchmarks.input")
OUT = Path(__file__).resolve().parent / "out" / "input.json"


def make_pngs(root: Path, n: int, size: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        label = int(rng.integers(0, 2))
        img = cv2.GaussianBlur(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), (5, 5), 0)
        img[:, : size // 2, label] = np.clip(img[:, : size // 2, label].astype(int) + 60, 0, 255)
        path = root / f"{i:05d}.png"
        cv2.imwrite(str(path), img)
        rows.append({"path": str(path), "label": label})
    return pd.DataFrame(rows)


def train_rate(x, y=None, epochs: int = 3, batch_size: int = 32, size: int = 50, n: int = 0) -> float:
    configure(0)
    model = build_model(TrainConfig(model="baseline_cnn"), (size, size, 3), 2)
    compile_model(model, 1e-3, "crossentropy")
    timer = EpochLog(n_images=n)
    callbacks = [timer] + ([EpochShuffle(x)] if isinstance(x, ArrayBatches) else [])
    kwargs = {} if y is None else {"batch_size": batch_size, "shuffle": True}
    model.fit(x, y, epochs=epochs, callbacks=callbacks, verbose=0, **kwargs)
    return timer.images_per_second()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--size", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds; medians reported")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    n, size, bs = args.n, args.size, args.batch_size
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        df = make_pngs(Path(tmp), n, size)
        log.info("wrote %d PNGs in %.1fs", n, time.perf_counter() - t0)
        npy = Path(tmp) / "train.npy"
        write_images(df["path"].tolist(), npy, size, 3)
        mapped, labels = np.load(npy, mmap_mode="r"), df["label"].to_numpy()
        x, y = np.array(mapped), keras.utils.to_categorical(labels, 2)
        common = dict(n_classes=2, batch_size=bs, shuffle=True, seed=0)
        runs: dict[str, list[float]] = {}
        loads: dict[str, list[float]] = {}
        for _ in range(args.rounds):  # alternated: the machine is shared; medians are reported
            for name, make in (
                ("in-memory uint8 arrays (Keras numpy path)", None),
                (
                    "ArrayBatches over the memmap (train stage)",
                    lambda: ArrayBatches(mapped, labels, **common),
                ),
                ("ArrayBatches over an in-RAM array", lambda: ArrayBatches(x, labels, **common)),
            ):
                load = os.getloadavg()[0]
                rate = (
                    train_rate(x, y, args.epochs, bs, size, n)
                    if make is None
                    else train_rate(make(), epochs=args.epochs, size=size, n=n)
                )
                runs.setdefault(name, []).append(rate)
                loads.setdefault(name, []).append(round(load, 2))
                log.info("%-45s %8.0f img/s (load %.2f)", name, rate, load)
        results = {k: statistics.median(v) for k, v in runs.items()}
    base = results["in-memory uint8 arrays (Keras numpy path)"]
    print(
        f"\nbaseline_cnn {size}px, {n} PNGs, batch {bs}, {os.cpu_count()} CPU cores, keras {keras.__version__}"
    )
    print(
        f"{'input (median of ' + str(args.rounds) + ' alternated runs)':45s} {'img/s':>8s} {'vs in-memory':>13s}"
    )
    for name, rate in results.items():
        print(f"{name:45s} {rate:8.0f} {rate / base:12.2f}x   runs {[round(r) for r in runs[name]]}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps(
            {
                "model": "baseline_cnn",
                "image_size": size,
                "n_images": n,
                "batch_size": bs,
                "epochs": args.epochs,
                "cpu_cores": os.cpu_count(),
                "backend": keras.backend.backend(),
                "rounds": args.rounds,
                "images_per_second": {k: round(v, 1) for k, v in results.items()},
                "runs": {k: [round(r, 1) for r in v] for k, v in runs.items()},
                "load1_before": loads,
                "date": time.strftime("%Y-%m-%d %H:%M"),
                "ratio_vs_in_memory": {k: round(v / base, 3) for k, v in results.items()},
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
