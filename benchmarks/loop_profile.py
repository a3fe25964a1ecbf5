"""Train-loop ablation (not a test): where a training step's time goes, one variant at a time.

    KERAS_BACKEND=jax uv run python benchmarks/loop_profile.py --variants stage no_zoom no_aug
    KERAS_BACKEND=tensorflow uv run python benchmarks/loop_profile.py

Trains baseline_cnn (default train params: flips + rot90 + zoom 0.1, batch 16) on synthetic
uint8 images through the train stage's own path (ArrayBatches over a memmapped .npy, the stage's
callbacks, runtime.configure) and switches ONE thing per variant:
  stage        the train stage as configured (pipeline.training.fit.fit)
  no_zoom      augment.zoom 0          no_aug     every augmentation off
  keras_zoom   keras.layers.RandomZoom instead of medpipe's RandomAxisZoom
  matmul_zoom  RandomAxisZoom's matmul path on every backend (the stage uses TF's affine kernel
               under TensorFlow, the matmuls elsewhere)
  no_bn        baseline_cnn without its BatchNorm (the model before b06fb4e: Conv2D + ReLU)
  spe<N>       steps_per_execution N (fit's default is the stage's own setting)
Variants run alternated for --rounds rounds (the machine is shared); medians are reported.
Writes benchmarks/out/loop_profile_<backend>.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
log = logging.getLogger("benchmarks.loop_profile")


def run_variant(name: str, images_path: Path, labels, args) -> float:
    import keras
    import numpy as np

    from pipeline.config import TrainConfig
    from pipeline.models import build_model
    from pipeline.training import fit as fit_mod
    from pipeline.training.checkpoints import CheckpointDir
    from pipeline.training.data import ArrayBatches
    from pipeline.training.runtime import configure

    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, early_stopping_patience=99)
    if name == "no_zoom":
        cfg = dataclasses.replace(cfg, augment=dataclasses.replace(cfg.augment, zoom=0.0))
    elif name == "no_aug":
        aug = dataclasses.replace(cfg.augment, flip=False, vflip=False, rot90=False, zoom=0.0)
        cfg = dataclasses.replace(cfg, augment=aug)
    runtime = configure(cfg.seed)
    images = np.load(images_path, mmap_mode="r")
    train = ArrayBatches(images, labels, 2, cfg.batch_size, shuffle=True, seed=cfg.seed)
    val = ArrayBatches(images[:256], labels[:256], 2, cfg.batch_size)
    from pipeline.models import layers as layers_mod

    ours = layers_mod.RandomAxisZoom
    if name == "keras_zoom":  # the generic affine warp medpipe used before (a gather per pixel in JAX)

        def keras_zoom(factor, seed=None, **kwargs):
            return keras.layers.RandomZoom((-factor, factor), fill_mode="reflect", seed=seed, **kwargs)

        layers_mod.RandomAxisZoom = keras_zoom
    affine = ours.AFFINE_BACKENDS
    if name == "matmul_zoom":
        ours.AFFINE_BACKENDS = ()
    from pipeline.models import cnn

    features = cnn.baseline_cnn_features
    if name == "no_bn":

        def no_bn_features(x):
            for i, filters in enumerate((32, 64, 128), start=1):
                x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"block{i}_conv")(
                    x
                )
                x = keras.layers.MaxPooling2D(2, name=f"block{i}_pool")(x)
            return keras.layers.GlobalAveragePooling2D(name="gap")(x)

        cnn.baseline_cnn_features = no_bn_features
    spe = int(name[3:]) if name.startswith("spe") else None
    try:
        with runtime.scope():
            model = build_model(cfg, images.shape[1:], 2)
        with tempfile.TemporaryDirectory() as tmp:
            timer = fit_mod.fit(
                model, train, val, cfg, CheckpointDir(Path(tmp)), runtime, steps_per_execution=spe
            )
    finally:
        layers_mod.RandomAxisZoom = ours
        cnn.baseline_cnn_features = features
        ours.AFFINE_BACKENDS = affine
        train.close()
        val.close()
    return timer.images_per_second()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=["stage", "no_zoom", "no_aug", "keras_zoom"])
    parser.add_argument("--n", type=int, default=2048)
    parser.add_argument("--size", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=3, help="the first (compilation) is left out")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    log.setLevel(logging.INFO)
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, args.n)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.npy"
        arr = np.lib.format.open_memmap(path, "w+", np.uint8, (args.n, args.size, args.size, 3))
        arr[:] = rng.integers(0, 256, arr.shape, dtype=np.uint8)
        arr.flush()
        del arr
        rates: dict[str, list[float]] = {v: [] for v in args.variants}
        loads: dict[str, list[float]] = {v: [] for v in args.variants}
        for r in range(args.rounds):
            for v in args.variants:
                load = os.getloadavg()[0]
                rate = run_variant(v, path, labels, args)
                rates[v].append(rate)
                loads[v].append(round(load, 2))
                log.info("round %d %-10s %8.1f img/s (load %.1f)", r + 1, v, rate, load)
    backend = keras.backend.backend()
    med = {v: statistics.median(x) for v, x in rates.items()}
    print(
        f"\n{backend}: baseline_cnn {args.size}px batch {args.batch_size}, {args.n} images, {os.cpu_count()} cores"
    )
    for v in args.variants:
        print(f"  {v:12s} median {med[v]:8.1f} img/s   runs {[round(x) for x in rates[v]]}")
    out = ROOT / "benchmarks" / "out" / f"loop_profile_{backend}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "backend": backend,
                "args": vars(args),
                "runs": rates,
                "median": med,
                "load1_before": loads,
                "cpu_count": os.cpu_count(),
                "keras": keras.__version__,
                "date": time.strftime("%Y-%m-%d %H:%M"),
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
