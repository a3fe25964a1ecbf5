"""Training throughput benchmark (not a test): the train stage's own loop vs a PyTorch reference.

    uv run python benchmarks/train_throughput.py --backend jax --model baseline_cnn --size 50
    python3 benchmarks/train_throughput.py --backend jax --suite gpu --reference torch \\
        --out benchmarks/results/gpu.json                       # on the GPU host (gpu_check.sh)

Per case (model, image size, batch) it writes N synthetic uint8 images as a .npy in the
preprocess stage's layout, maps it read-only and trains through the train stage's own path:
`runtime.configure()` (mixed_float16 + the GPU there, DataParallel over several), the model from
`build_model` (weights none, default augmentation), `ArrayBatches` over the memmap and
`pipeline.training.fit.fit` with the stage's callbacks. Steady-state img/s leaves out the first
epoch (compilation). `--reference torch` then trains the same architecture in PyTorch (bf16
autocast, channels_last, tensors already on the device; benchmarks/torch_models.py, imported only
then) and prints medpipe/torch. Rows (device, model, image_size, batch_size, precision,
medpipe_img_s, torch_img_s, ratio, date, ...) replace rows with the same key in --out.
Under KERAS_BACKEND=jax nothing imports TensorFlow: it runs on a host with JAX and no TensorFlow.
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
KEY = ("device", "backend", "precision", "model", "image_size", "batch_size")
SUITES = {  # the table (#10): model, px, batch
    "gpu": [
        ("baseline_cnn", 50, 256),
        ("small_resnet", 64, 256),
        ("mobilenetv2", 224, 128),
        ("efficientnetb0", 224, 128),
        ("densenet201", 224, 64),
    ],
    "cpu": [("baseline_cnn", 50, 16), ("baseline_cnn", 50, 256)],
}
log = logging.getLogger("benchmarks.train_throughput")


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["tensorflow", "jax"], default=os.environ.get("KERAS_BACKEND"))
    parser.add_argument("--suite", choices=sorted(SUITES), help="the cases of a suite instead of --model")
    parser.add_argument("--model", default="baseline_cnn")
    parser.add_argument("--size", type=int, default=50, help="image side in px")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--n", type=int, default=4096, help="synthetic training images per case")
    parser.add_argument("--epochs", type=int, default=3, help="the first is warm-up (compilation)")
    parser.add_argument("--precision", default=None, help="float32 | mixed_float16 | mixed_bfloat16")
    parser.add_argument("--reference", choices=["torch"], help="also train the PyTorch twin; print the ratio")
    parser.add_argument("--torch-steps", type=int, default=30)
    parser.add_argument("--out", type=Path, default=OUT)
    return parser.parse_args()


def device_name(backend: str, devices: list[str]) -> str:
    """'NVIDIA H100 80GB HBM3 x1' / 'cpu x86_64 (2 cores)' for the devices training runs on."""
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


def synthetic_npy(path: Path, n: int, size: int, seed: int = 0):
    """uint8 (n, size, size, 3) noise with a learnable class signal, written like preprocess writes."""
    import numpy as np

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    arr = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n, size, size, 3))
    for i in range(0, n, 1024):
        block = rng.integers(0, 200, (min(1024, n - i), size, size, 3), dtype=np.uint8)
        block[:, : size // 2, :, 0] += (labels[i : i + len(block)] * 50).astype(np.uint8)[:, None, None]
        arr[i : i + len(block)] = block
    arr.flush()
    del arr
    return np.load(path, mmap_mode="r"), labels


def measure(model_name: str, size: int, batch: int, args: argparse.Namespace, tmp: Path) -> dict:
    import keras

    from pipeline.config import TrainConfig
    from pipeline.models import build_model
    from pipeline.training.checkpoints import CheckpointDir
    from pipeline.training.data import ArrayBatches
    from pipeline.training.fit import fit
    from pipeline.training.runtime import configure

    images, labels = synthetic_npy(tmp / f"{model_name}_{size}.npy", args.n, size)
    n_val = min(len(images), 2 * batch)
    cfg = TrainConfig(model=model_name, weights="none", epochs=args.epochs, batch_size=batch)
    runtime = configure(cfg.seed, precision=args.precision)
    train = ArrayBatches(images, labels, 2, batch, shuffle=True, seed=cfg.seed)
    val = ArrayBatches(images[:n_val], labels[:n_val], 2, batch)
    ckpt = CheckpointDir(tmp / f"ckpt_{model_name}")
    ckpt.clear()  # fit's CSVLogger writes into it from the first epoch
    try:
        with runtime.scope():
            model = build_model(cfg, (size, size, 3), 2)
        timer = fit(model, train, val, cfg, ckpt, runtime)
    finally:
        train.close()
        val.close()
    rate = timer.images_per_second()
    return {
        "device": device_name(runtime.backend, runtime.devices),
        **{k: runtime.summary()[k] for k in ("backend", "precision", "replicas")},
        "model": model_name,
        "image_size": size,
        "batch_size": batch,
        "medpipe_img_s": round(rate, 1) if rate else None,
        "epoch_seconds": [round(s, 2) for s in timer.epoch_seconds],
        "n_images": args.n,
        "input": "memmapped uint8 .npy -> ArrayBatches -> pipeline.training.fit.fit",
        "keras": keras.__version__,
    }


def with_reference(row: dict, args: argparse.Namespace) -> dict:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import torch_models  # torch is imported here only

    rate, device, precision = torch_models.train_rate(
        row["model"], row["image_size"], row["batch_size"], args.torch_steps
    )
    row.update(
        torch_img_s=round(rate, 1) if rate else None,
        torch_device=device,
        torch_precision=precision,
        ratio=round(row["medpipe_img_s"] / rate, 3) if rate and row["medpipe_img_s"] else None,
    )
    return row


def save(rows: list[dict], out: Path) -> list[dict]:
    kept = json.loads(out.read_text()) if out.is_file() else []
    keys = {tuple(r.get(k) for k in KEY) for r in rows}
    kept = [r for r in kept if tuple(r.get(k) for k in KEY) not in keys] + rows
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(kept, indent=2) + "\n")
    return kept


def table(rows: list[dict]) -> str:
    head = (
        f"{'device':30s} {'backend':10s} {'precision':14s} {'model':14s} {'px':>4s} {'batch':>5s} "
        f"{'medpipe':>9s} {'torch':>9s} {'ratio':>6s}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        torch_rate, ratio = r.get("torch_img_s"), r.get("ratio")
        lines.append(
            f"{r['device'][:30]:30s} {r['backend']:10s} {r['precision']:14s} {r['model']:14s} "
            f"{r['image_size']:4d} {r['batch_size']:5d} {r['medpipe_img_s'] or 0:9.1f} "
            f"{torch_rate if torch_rate is not None else '-':>9} {ratio if ratio is not None else '-':>6}"
        )
    return "\n".join(lines)


def main() -> None:
    args = _args()
    if args.backend:
        os.environ["KERAS_BACKEND"] = args.backend  # before keras is imported anywhere
    sys.path.insert(0, str(ROOT))
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cases = SUITES[args.suite] if args.suite else [(args.model, args.size, args.batch_size)]
    rows = []
    for model_name, size, batch in cases:
        with tempfile.TemporaryDirectory() as tmp:
            load = (
                " ".join(Path("/proc/loadavg").read_text().split()[:3])
                if Path("/proc/loadavg").is_file()
                else "?"
            )
            row = measure(model_name, size, batch, args, Path(tmp))
        row.update(loadavg_before=load, nice=os.nice(0), date=time.strftime("%Y-%m-%d"))
        if args.reference:
            row = with_reference(row, args)
        log.info("%s", json.dumps(row))
        rows.append(row)
        save([row], args.out)  # a case at a time: a run cut short keeps what it measured
    print(table(rows))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
