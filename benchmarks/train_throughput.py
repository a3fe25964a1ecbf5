"""Training throughput benchmark (not a test): img/s of the train stage's model + input pipeline.

    uv run python benchmarks/train_throughput.py --backend jax --model mobilenetv2 --size 96
    uv run python benchmarks/train_throughput.py --backend tensorflow --model baseline_cnn --size 50

One case per run (the Keras backend is fixed per process). It writes N synthetic PNGs, builds the
model with `pipeline.models.build_model` (weights none) inside `pipeline.training.runtime.configure()`
(so a GPU host gets mixed_float16 and MirroredStrategy / DataParallel over its devices), feeds it
the train stage's `ArrayBatches` over a preprocessed memory-mapped uint8 .npy and reports the
steady-state training img/s (first epoch, with compilation, left out). Each run adds or replaces
its row in benchmarks/out/train_throughput.json (keyed by device, backend, precision, model, size,
batch) and prints every stored row. Under KERAS_BACKEND=jax nothing imports tensorflow, so it runs
on a host with JAX and no TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out" / "train_throughput.json"
KEY = ("device", "backend", "precision", "replicas", "model", "image_size", "batch_size")
log = logging.getLogger("benchmarks.train_throughput")


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["tensorflow", "jax"], default=os.environ.get("KERAS_BACKEND"))
    parser.add_argument("--model", default="baseline_cnn")
    parser.add_argument("--size", type=int, default=50, help="image side in px")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--n", type=int, default=1024, help="synthetic training images")
    parser.add_argument("--epochs", type=int, default=3, help="the first is warm-up (compilation)")
    parser.add_argument("--precision", default=None, help="float32 | mixed_float16 | mixed_bfloat16")
    return parser.parse_args()


def device_name(backend: str, devices: list[str]) -> str:
    """'NVIDIA H100 80GB HBM3 x1' / 'cpu (2 cores)' for the devices training runs on."""
    name = "cpu"
    if backend == "jax":
        import jax

        name = jax.devices()[0].device_kind
    elif any(d.startswith("gpu") for d in devices):
        import tensorflow as tf

        gpu = tf.config.list_physical_devices("GPU")[0]
        name = tf.config.experimental.get_device_details(gpu).get("device_name", "gpu")
    if name.lower() == "cpu":
        return f"cpu {platform.machine()} ({os.cpu_count()} cores)"
    return f"{name} x{len(devices)}"


def measure(args: argparse.Namespace, df) -> dict:
    import keras
    import numpy as np

    from pipeline.arrays.build import write_images
    from pipeline.config import TrainConfig
    from pipeline.models import build_model
    from pipeline.training.data import ArrayBatches, EpochShuffle
    from pipeline.training.fit import EpochLog, compile_model
    from pipeline.training.runtime import configure

    runtime = configure(0, precision=args.precision)
    npy = Path(df["path"].iloc[0]).parent / "train.npy"  # the preprocess stage's writer and layout
    write_images(df["path"].tolist(), npy, args.size, 3)
    images = np.load(npy, mmap_mode="r")
    ds = ArrayBatches(images, df["label"].to_numpy(), 2, args.batch_size, shuffle=True, seed=0)
    timer = EpochLog(n_images=len(df))
    with runtime.scope():
        model = build_model(TrainConfig(model=args.model, weights="none"), (args.size, args.size, 3), 2)
        compile_model(model, 1e-3, "crossentropy")
        model.fit(
            runtime.shardable(ds),
            epochs=args.epochs,
            shuffle=False,
            callbacks=[EpochShuffle(ds), timer],
            verbose=0,
        )
    return {
        "device": device_name(runtime.backend, runtime.devices),
        **{k: runtime.summary()[k] for k in ("backend", "precision", "replicas")},
        "model": args.model,
        "image_size": args.size,
        "batch_size": args.batch_size,
        "images_per_second": round(timer.images_per_second(), 1),
        "epoch_seconds": [round(s, 2) for s in timer.epoch_seconds],
        "n_images": len(df),
        "input": "memmapped uint8 .npy (ArrayBatches)",
        "keras": keras.__version__,
    }


def save(row: dict) -> list[dict]:
    rows = json.loads(OUT.read_text()) if OUT.is_file() else []
    rows = [r for r in rows if tuple(r.get(k) for k in KEY) != tuple(row[k] for k in KEY)] + [row]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(rows, indent=2) + "\n")
    return rows


def table(rows: list[dict]) -> str:
    head = f"{'device':34s} {'backend':10s} {'precision':14s} {'rep':>3s} {'model':13s} {'px':>4s} {'batch':>5s} {'img/s':>8s}  load"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['device'][:34]:34s} {r['backend']:10s} {r['precision']:14s} {r['replicas']:3d} "
            f"{r['model']:13s} {r['image_size']:4d} {r['batch_size']:5d} {r['images_per_second']:8.1f}  "
            f"{r.get('loadavg_before', '?')} -> {r.get('loadavg_after', '?')} (nice {r.get('nice', '?')})"
        )
    return "\n".join(lines)


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").is_file() else "?"


def main() -> None:
    args = _args()
    if args.backend:
        os.environ["KERAS_BACKEND"] = args.backend  # before keras is imported anywhere
    sys.path.insert(0, str(ROOT))
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from input import make_pngs  # benchmarks/input.py: same synthetic PNGs (imports keras: after the backend)

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        df = make_pngs(Path(tmp), args.n, args.size)
        log.info("wrote %d PNGs of %d px in %.1fs", args.n, args.size, time.perf_counter() - t0)
        before = _loadavg()
        row = measure(args, df)
    row.update(loadavg_before=before, loadavg_after=_loadavg(), nice=os.nice(0))
    print(table(save(row)))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
