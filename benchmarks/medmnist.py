"""MedMNIST benchmark (not a test): the pipeline in-process on PneumoniaMNIST / BreastMNIST.

    uv run python benchmarks/medmnist.py [--datasets pneumoniamnist breastmnist]
        [--config FILE.yaml] [--set train.epochs=40 --set evaluate.tta=true ...] [--tag NAME]

regroup (medmnist adapter) -> validate -> split (official splits kept) -> balance -> train, then
the threshold is chosen on val (Youden) and test is scored once. Params: BASE below, then
benchmarks/medmnist_<dataset>.yaml (or --config, applied to every dataset), then --set. Every run
is appended to benchmarks/out/medmnist_runs.jsonl (val and test figures, params, wall time,
load); benchmarks/out/medmnist.json keeps the latest run per dataset beside the MedMNIST v2 rows.
Configurations are chosen on val AUC / ACC only; test is reported, never used to choose.
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

try:  # run as a script (benchmarks/ on sys.path) or imported as benchmarks.medmnist
    from medmnist_params import GOALS, MEDMNIST_V2, params_for
except ImportError:  # pragma: no cover
    from benchmarks.medmnist_params import GOALS, MEDMNIST_V2, params_for

log = logging.getLogger("benchmarks.medmnist")
HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared" / "datasets" / "medmnist"
OUT, RUNS = HERE / "out" / "medmnist.json", HERE / "out" / "medmnist_runs.jsonl"


def _write_raw_manifest(flag: str) -> Path:
    Path("data/raw").mkdir(parents=True)
    npz = Path("data/raw") / f"{flag}.npz"
    shutil.copy(SHARED / f"{flag}.npz", npz)
    data = npz.read_bytes()
    raw_csv = Path("data/manifests/raw.csv")
    row = {"path": npz.as_posix(), "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    manifest.write(pd.DataFrame([row]), raw_csv)
    return raw_csv


def _scores(y: np.ndarray, prob: np.ndarray, threshold: float) -> dict:
    return {
        "auc": round(float(roc_auc_score(y, prob)), 4),
        "acc": round(float(accuracy_score(y, prob >= threshold)), 4),
    }


def run_pipeline(flag: str, raw: dict) -> dict:
    """Run the stages in the current directory (an empty project root); return figures."""
    cfg = config.from_dict(raw)
    raw_csv, p = _write_raw_manifest(flag), Path
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
    size, channels = cfg.preprocess.image_size, cfg.preprocess.channels
    scores = {}
    for name in ("val", "test"):
        df = manifest.read(f"data/splits/{name}.csv")
        prob = predict_proba(model, df, size, channels, tta=cfg.evaluate.tta)[:, pos]
        scores[name] = ((df["label"].to_numpy() == pos).astype(int), prob)
    fpr, tpr, thr = roc_curve(*scores["val"])
    threshold = float(min(thr[np.argmax(tpr - fpr)], 1.0))  # Youden on val only
    summary = json.loads(Path("models/train_summary.json").read_text())
    return {
        "val": _scores(*scores["val"], threshold),
        "test": _scores(*scores["test"], threshold),
        "threshold": round(threshold, 4),
        "n_train": summary["n_train"],
        "n_val": len(scores["val"][0]),
        "n_test": len(scores["test"][0]),
        "epochs_run": summary["epochs_run"],
        "best_epoch": summary["best_epoch"],
        "train_seconds": round(train_s, 1),
        "train_images_per_second": summary["train_images_per_second"],
    }


def run_one(flag: str, raw: dict, tag: str) -> dict:
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        try:
            figures = run_pipeline(flag, raw)
        finally:
            os.chdir(here)
    goal = GOALS.get(flag, (0.0, 0.0))
    return {
        "dataset": flag,
        "tag": tag,
        **figures,
        "goal": {"auc": goal[0], "acc": goal[1]},
        "goal_met": figures["test"]["auc"] >= goal[0] and figures["test"]["acc"] >= goal[1],
        "medmnist_v2": {k: {"auc": a, "acc": c} for k, (a, c) in MEDMNIST_V2.get(flag, {}).items()},
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "niceness": os.nice(0),
        "cpu_cores": os.cpu_count(),
        "params": raw,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["pneumoniamnist", "breastmnist"])
    parser.add_argument(
        "--config", type=Path, help="params override for every dataset (default: per dataset)"
    )
    parser.add_argument(
        "--set", dest="sets", action="append", default=[], help="section.key=value (repeatable)"
    )
    parser.add_argument("--tag", default="", help="a name for this configuration in the runs log")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    results = json.loads(OUT.read_text()) if OUT.is_file() else {}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    for flag in args.datasets:
        record = run_one(flag, params_for(flag, args.config, args.sets), args.tag)
        results[flag] = record
        OUT.write_text(json.dumps(results, indent=2) + "\n")
        with RUNS.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
    print(
        f"\n{'dataset':16s} {'val AUC/ACC':>12s} {'test AUC/ACC':>13s} {'ResNet-18(28)':>14s} {'goal':>10s} {'wall s':>7s}"
    )
    for flag in args.datasets:
        r = results[flag]
        paper, goal = MEDMNIST_V2[flag]["ResNet-18 (28)"], GOALS[flag]
        print(f"{flag:16s} {r['val']['auc']:.3f}/{r['val']['acc']:.3f}  {r['test']['auc']:.3f}/{r['test']['acc']:.3f}"
              f"  {paper[0]:.3f}/{paper[1]:.3f}  {goal[0]:.3f}/{goal[1]:.2f} {r['wall_seconds']:7.0f}")  # fmt: skip
    print(f"wrote {OUT} and appended to {RUNS}")


if __name__ == "__main__":
    main()
