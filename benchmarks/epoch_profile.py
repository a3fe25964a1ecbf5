"""Where one training epoch's wall time goes, per preset (not a test; #20 item 1).

    KERAS_BACKEND=tensorflow uv run --frozen python benchmarks/epoch_profile.py
    KERAS_BACKEND=jax uv run --frozen python benchmarks/epoch_profile.py --cases idc small_resnet28
    uv run --frozen python benchmarks/epoch_profile.py --summary   # both backends' JSON -> table

Each case is a preset's own train section (model, width, stride, batch, augmentation, PreciseBN,
monitor, class-weighted batches) at the preset's image size, fitted through the train stage's own
path (`pipeline.training.fit.fit` over memory-mapped synthetic uint8 arrays with val at 21 % of train,
the preset's val/train ratio) for --epochs epochs; the first (compilation) is left out. Every
callback hook is timed, and the compiled train step is timed alone afterwards (median of resident-
batch `train_on_batch` calls), so one steady-state epoch splits into:
  step        steps x the compiled step alone (the part that must be >= 80 %)
  loop        the rest of the training part: input wait, per-step dispatch and callback batch hooks
  validation  Keras' validation pass (validation_data) when fit runs one
  val_metrics ValMetrics (val AUC / balanced accuracy: the val set predicted again, or the one pass)
  precise_bn  BatchNorm statistics re-estimated before validation
  callbacks   every other callback (checkpoints, CSV history, resumable backup, LR, early stop)
`gather_cpu` is the thread time spent gathering batches (overlapped with steps by the prefetch).
Under TF, `step_seconds_in_loop` is the median step inside fit (batch begin -> end): near the step
alone when the loop's cost is gaps between steps. --tf-malloc trains without KeepFreedMemory
(pipeline/training/allocator.py): the A/B of that fix, in one sitting.
Writes benchmarks/results/epoch_profile_<backend>.json; --summary prints both as one table.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
RESULTS = ROOT / "benchmarks" / "results"
log = logging.getLogger("benchmarks.epoch_profile")
# case -> (preset, image size, channels, classes, n_train); None = the preset's own image size
CASES = {
    "idc": ("idc", 50, 3, 2, 2048),
    "kermany-3class": ("kermany-3class", 128, 1, 3, 1024),
    "kermany-binary": ("kermany-binary", 64, 1, 2, 2048),
    "tb": ("tb", 256, 1, 2, 256),
    "breakhis": ("breakhis-densenet201", 224, 3, 2, 512),
    "small_resnet28": ("kermany-binary", 28, 1, 2, 2048),  # MedMNIST's size, kermany-binary's recipe
}
VAL_SHARE = 0.21  # val / train images: 15 % / 70 % in every preset's split
PARTS = ("step", "loop", "validation", "val_metrics", "precise_bn", "callbacks")


def train_config(preset: str, epochs: int):
    """The preset's TrainConfig with `epochs` plain epochs (no budget, no warm-up)."""
    from pipeline.config import loader, presets

    train = presets.load(preset)["train"] | {"epochs": epochs, "budget_images": None, "warmup_images": 0}
    train.update(warmup_epochs=0, early_stopping_patience=99)
    return loader.from_dict({"train": train}).train


class Clock:
    """Seconds per (epoch, part), and the marks the probes set within an epoch."""

    def __init__(self):
        self.parts: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.epoch = 0
        self.marks: dict[str, float] = {}
        self.steps: dict[int, list[float]] = defaultdict(list)  # per step, inside fit (TF only)

    def timed(self, part: str, fn):
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.parts[self.epoch][part] += time.perf_counter() - t0

        return wrapper


def probes(clock: Clock):
    import keras

    class First(keras.callbacks.Callback):  # runs before every other callback's hook
        def on_epoch_begin(self, epoch, logs=None):
            clock.epoch = epoch
            clock.marks = {"begin": time.perf_counter()}

        def on_test_begin(self, logs=None):
            clock.marks["test_begin"] = time.perf_counter()

        def on_train_batch_begin(self, batch, logs=None):
            clock.marks["batch_begin"] = time.perf_counter()

    class Last(keras.callbacks.Callback):  # runs after every other callback's hook
        def on_test_end(self, logs=None):
            clock.parts[clock.epoch]["validation_wall"] += time.perf_counter() - clock.marks["test_begin"]

        def on_epoch_end(self, epoch, logs=None):
            clock.parts[epoch]["wall"] = time.perf_counter() - clock.marks["begin"]

        def on_train_batch_end(self, batch, logs=None):  # TF's CPU step has ended when this runs
            clock.steps[clock.epoch].append(time.perf_counter() - clock.marks["batch_begin"])

    if keras.backend.backend() != "tensorflow":  # JAX dispatches async: a batch hook would sync it
        del First.on_train_batch_begin, Last.on_train_batch_end
    return First(), Last()


PART_OF = {"ValMetrics": "val_metrics", "PreciseBatchNorm": "precise_bn"}
BATCH_HOOKS = ("on_train_batch_begin", "on_train_batch_end", "on_batch_begin", "on_batch_end")


def instrument(callbacks: list, clock: Clock) -> list:
    """Wrap every on_* hook a callback overrides; batch hooks are counted inside the training part."""
    import keras

    for cb in callbacks:
        name = PART_OF.get(type(cb).__name__, "callbacks")
        for hook in [h for h in dir(keras.callbacks.Callback) if h.startswith("on_")]:
            if getattr(type(cb), hook) is getattr(keras.callbacks.Callback, hook):
                continue
            part = "batch_hooks" if hook in BATCH_HOOKS and name == "callbacks" else name
            setattr(cb, hook, clock.timed(part, getattr(cb, hook)))
    return callbacks


def step_seconds(model, batch, repeats: int = 15) -> float:
    """Median seconds of one compiled train step on a resident batch (after two warm-up calls)."""
    x, y, *weights = batch
    sw = weights[0] if weights else None
    times = []
    for i in range(repeats + 2):
        t0 = time.perf_counter()
        model.train_on_batch(x, y, sample_weight=sw)
        if i >= 2:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def plain_reference(cfg, x, labels, n_classes: int, epochs: int) -> dict:
    """The same model (fresh, same seed), batch and arrays (in memory) trained by the plainest loop
    of the backend (benchmarks/loop_reference.py): plain model.fit under TF, a jitted JAX loop."""
    import numpy as np
    from loop_reference import plain_img_s

    from pipeline.models import build_model
    from pipeline.training.losses import make_loss
    from pipeline.training.runtime import configure

    configure(cfg.seed)
    model = build_model(cfg, x.shape[1:], n_classes)
    onehot = np.eye(n_classes, dtype=np.float32)[labels]
    loss = make_loss(cfg.loss, cfg.label_smoothing)
    out = plain_img_s(model, x, onehot, cfg.batch_size, epochs, cfg.learning_rate, loss, cfg.seed)
    return {k: out[k] for k in ("img_s", "epoch_seconds", "path") if k in out}


def profile_case(name: str, args) -> dict:
    import keras
    import numpy as np

    from pipeline.models import build_model
    from pipeline.training import fit as fit_mod
    from pipeline.training.checkpoints import CheckpointDir
    from pipeline.training.data import ArrayBatches
    from pipeline.training.runtime import configure

    preset, size, channels, n_classes, n_train = CASES[name]
    cfg = train_config(preset, args.epochs)
    n_val = round(n_train * VAL_SHARE)
    rng = np.random.default_rng(0)
    clock = Clock()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "images.npy"
        arr = np.lib.format.open_memmap(path, "w+", np.uint8, (n_train + n_val, size, size, channels))
        arr[:] = rng.integers(0, 256, arr.shape, dtype=np.uint8)
        arr.flush()
        del arr
        images = np.load(path, mmap_mode="r")
        labels = rng.integers(0, n_classes, n_train + n_val)
        weights = {c: 1.0 + 0.5 * c for c in range(n_classes)}
        runtime = configure(cfg.seed)
        train = ArrayBatches(images[:n_train], labels[:n_train], n_classes, cfg.batch_size, True, 0, weights)
        val = ArrayBatches(images[n_train:], labels[n_train:], n_classes, cfg.batch_size)
        for ds in (train, val):
            ds.gather = clock.timed("gather_cpu", ds.gather)
        with runtime.scope():
            model = build_model(cfg, images.shape[1:], n_classes)
        make, keep = fit_mod._callbacks, fit_mod.KeepFreedMemory
        first, last = probes(clock)
        fit_mod._callbacks = lambda *a, **k: [first, *instrument(make(*a, **k), clock)]
        if args.tf_malloc:
            fit_mod.KeepFreedMemory = keras.callbacks.Callback
        try:
            fit_mod.fit(model, train, val, cfg, CheckpointDir(Path(tmp)), runtime, (last,))
        finally:
            fit_mod._callbacks, fit_mod.KeepFreedMemory = make, keep
        step = step_seconds(model, train.gather(0))
        train.close()
        val.close()
        x = np.array(images[:n_train])
    reference = plain_reference(cfg, x, labels[:n_train], n_classes, args.epochs) if args.reference else None
    epochs = [dict(clock.parts[e]) for e in sorted(clock.parts) if e >= 1]  # steady state
    steps = len(train)
    rows = []
    for e in epochs:
        part = {
            "step": steps * step,
            "validation": e.get("validation_wall", 0.0)
            - (e.get("precise_bn", 0.0) if e.get("validation_wall") else 0),
            "val_metrics": e.get("val_metrics", 0.0),
            "precise_bn": e.get("precise_bn", 0.0),
            "callbacks": e.get("callbacks", 0.0),
        }
        part["loop"] = e["wall"] - sum(part.values())
        extra = {k: e.get(k, 0.0) for k in ("gather_cpu", "batch_hooks")}
        rows.append({"wall": e["wall"], **extra, **part})
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    in_loop = [t for e in sorted(clock.steps) if e >= 1 for t in clock.steps[e]]
    share = {k: med[k] / med["wall"] for k in PARTS}
    return {
        "case": name,
        "preset": preset,
        "model": cfg.model,
        "image_size": size,
        "batch_size": cfg.batch_size,
        "n_train": n_train,
        "n_val": n_val,
        "steps_per_epoch": steps,
        "step_seconds": step,
        # the same step inside fit (batch begin -> end, input wait included; TF only): above
        # step_seconds when the loop slows the step itself rather than adding gaps between steps
        "step_seconds_in_loop": statistics.median(in_loop) if in_loop else None,
        "malloc": "tf" if args.tf_malloc else "kept",
        "epoch_seconds": med,
        "share": share,
        "train_img_s": n_train / (med["wall"] - med["validation"] - med["val_metrics"] - med["precise_bn"]),
        "epochs_measured": len(rows),
        "reference": reference,
    }


def print_table(docs: list[dict]) -> None:
    head = (
        f"{'backend':10s} {'case':15s} {'px':>4s} {'img/s':>6s} {'plain':>6s} {'ratio':>5s} {'epoch s':>8s} "
    )
    head += " ".join(f"{p:>11s}" for p in PARTS) + "  in-loop/alone"
    print(head)
    for doc in docs:
        print(f"-- {doc['backend']} {doc['label']} ({doc['date']})")
        for row in doc["cases"]:
            shares = " ".join(f"{100 * row['share'][p]:10.1f}%" for p in PARTS)
            plain = (row["reference"] or {}).get("img_s", float("nan"))
            in_loop = (row.get("step_seconds_in_loop") or float("nan")) / row["step_seconds"]
            print(
                f"{doc['backend']:10s} {row['case']:15s} {row['image_size']:4d} {row['train_img_s']:6.1f} "
                f"{plain:6.1f} {row['train_img_s'] / plain:5.2f} {row['epoch_seconds']['wall']:8.1f} {shares}  {in_loop:13.2f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    parser.add_argument("--epochs", type=int, default=4, help="the first (compilation) is left out")
    parser.add_argument("--no-reference", dest="reference", action="store_false", help="skip the plain loop")
    parser.add_argument(
        "--tf-malloc",
        action="store_true",
        help="train without KeepFreedMemory: TF's malloc thresholds, as before pipeline/training/allocator.py",
    )
    parser.add_argument("--label", default="", help="a tag for the run (e.g. the commit), kept in the JSON")
    parser.add_argument("--out", type=Path, help="JSON path (default results/epoch_profile_<backend>.json)")
    parser.add_argument("--summary", action="store_true", help="print the saved JSON of both backends")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    log.setLevel(logging.INFO)
    if args.summary:
        docs = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("epoch_profile_*.json"))]
        print_table(docs)
        return
    import keras

    backend = keras.backend.backend()
    rows = []
    for name in args.cases:
        load = os.getloadavg()[0]
        row = profile_case(name, args) | {"load1_before": round(load, 2)}
        log.info("%s: %.1f img/s, step %.0f %%", name, row["train_img_s"], 100 * row["share"]["step"])
        rows.append(row)
    doc = {
        "backend": backend,
        "label": args.label,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "keras": keras.__version__,
        "epochs": args.epochs,
        "cases": rows,
    }
    out = args.out or RESULTS / f"epoch_profile_{backend}.json"
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print_table([doc])


if __name__ == "__main__":
    main()
