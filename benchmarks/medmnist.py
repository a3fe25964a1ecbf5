"""MedMNIST benchmark (not a test): the pipeline in-process on PneumoniaMNIST / BreastMNIST.

    uv run python benchmarks/medmnist.py [--datasets pneumoniamnist breastmnist] [--epochs N]

regroup (medmnist adapter) -> validate -> split (official splits kept) -> balance -> train, then
the threshold is chosen on val (Youden) and test is scored once. Printed beside the MedMNIST v2
ResNet-18 (28) rows; figures, params and wall time go to benchmarks/out/medmnist.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, roc_auc_score, roc_curve

from pipeline import config, manifest
from pipeline.stages import balance, regroup, split, train, validate
from pipeline.training.data import predict_proba

log = logging.getLogger("benchmarks.medmnist")
SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "medmnist"
OUT = Path(__file__).resolve().parent / "out" / "medmnist.json"
PAPER = {"pneumoniamnist": (0.944, 0.854), "breastmnist": (0.901, 0.863)}  # MedMNIST v2 ResNet-18 (28)
GOALS = {"pneumoniamnist": (0.985, 0.92), "breastmnist": (0.92, 0.87)}


def params(flag: str, epochs: int, model: str, lr: float, patience: int) -> dict:
    return {
        "data": {"format": "medmnist"},
        "preprocess": {"image_size": 28, "channels": 1},
        "split": {"respect_source_split": True},
        "balance": {"strategy": "class_weight"},
        "train": {
            "model": model,
            "epochs": epochs,
            "batch_size": 64 if flag == "pneumoniamnist" else 32,
            "learning_rate": lr,
            "dropout": 0.3,
            "early_stopping_patience": patience,
            "reduce_lr_patience": 3,
            "augment": {"flip": True, "rot90": flag == "breastmnist", "zoom": 0.1},
        },
    }


def run_pipeline(flag: str, raw: dict) -> dict:
    """Run the stages in the current directory (an empty project root); return figures."""
    cfg = config.from_dict(raw)
    Path("data/raw").mkdir(parents=True)
    npz = Path("data/raw") / f"{flag}.npz"
    shutil.copy(SHARED / f"{flag}.npz", npz)
    data = npz.read_bytes()
    raw_csv = Path("data/manifests/raw.csv")
    manifest.write(
        pd.DataFrame(
            [{"path": npz.as_posix(), "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}]
        ),
        raw_csv,
    )
    p = Path
    regroup.run(cfg, {"raw": p("data/raw"), "manifest": raw_csv}, {
        "manifest": p("data/interim/manifest.csv"), "labels": p("data/interim/labels.json"),
        "class_view": p("data/interim/class_view"), "extracted": p("data/interim/extracted")})  # fmt: skip
    validate.run(cfg, {"manifest": p("data/interim/manifest.csv"), "labels": p("data/interim/labels.json")}, {
        "validated": p("data/interim/validated.csv"), "quarantine": p("reports/validation/quarantine.csv"),
        "summary": p("reports/validation/summary.json"), "docs": p("reports/validation/data_docs")})  # fmt: skip
    split.run(
        cfg,
        {"validated": p("data/interim/validated.csv")},
        {"splits": p("data/splits"), "report": p("r.json")},
    )
    balance.run(
        cfg, {"train": p("data/splits/train.csv")}, {"balanced": p("data/balanced"), "report": p("b.json")}
    )
    t0 = time.perf_counter()
    train.run(cfg, {"balanced": p("data/balanced"), "splits": p("data/splits"), "labels": p("data/interim/labels.json")},
              {"model": p("models"), "history": p("reports/train/history.csv"), "checkpoints": p("checkpoints")})  # fmt: skip
    train_s = time.perf_counter() - t0
    import keras

    model = keras.saving.load_model("models/model.keras", safe_mode=True)
    labels = manifest.read_json("data/interim/labels.json")
    pos = labels["classes"].index(labels["positive"])
    scores = {}
    for name in ("val", "test"):
        df = manifest.read(f"data/splits/{name}.csv")
        prob = predict_proba(model, df, 28, 1, tta=True)[:, pos]
        scores[name] = ((df["label"].to_numpy() == pos).astype(int), prob)
    fpr, tpr, thr = roc_curve(*scores["val"])
    threshold = float(thr[np.argmax(tpr - fpr)])
    y, prob = scores["test"]
    summary = json.loads(Path("models/train_summary.json").read_text())
    return {
        "test_auc": round(float(roc_auc_score(y, prob)), 4),
        "test_acc": round(float(accuracy_score(y, prob >= threshold)), 4),
        "val_auc": round(float(roc_auc_score(*scores["val"])), 4),
        "threshold": threshold,
        "n_test": len(y),
        "epochs_run": summary["epochs_run"],
        "best_epoch": summary["best_epoch"],
        "train_seconds": round(train_s, 1),
        "train_images_per_second": summary["train_images_per_second"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["pneumoniamnist", "breastmnist"])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--model", default="small_resnet")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--patience", type=int, default=8)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    results = json.loads(OUT.read_text()) if OUT.is_file() else {}
    here = os.getcwd()
    for flag in args.datasets:
        raw = params(flag, args.epochs, args.model, args.lr, args.patience)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            os.chdir(tmp)
            try:
                figures = run_pipeline(flag, raw)
            finally:
                os.chdir(here)
        results[flag] = {**figures, "wall_seconds": round(time.perf_counter() - t0, 1), "params": raw,
                         "cpu_cores": os.cpu_count()}  # fmt: skip
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\n{'dataset':16s} {'AUC':>6s} {'ACC':>6s}  {'ResNet-18(28) AUC/ACC':>22s}  {'goal':>11s}  wall s")
    for flag, r in results.items():
        paper, goal = PAPER.get(flag, (0, 0)), GOALS.get(flag, (0, 0))
        print(f"{flag:16s} {r['test_auc']:6.3f} {r['test_acc']:6.3f}  {paper[0]:>15.3f}/{paper[1]:.3f}  "
              f"{goal[0]:.3f}/{goal[1]:.2f}  {r['wall_seconds']:6.0f}")  # fmt: skip
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
