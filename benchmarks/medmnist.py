"""MedMNIST benchmark (not a test): the pipeline in-process on PneumoniaMNIST / BreastMNIST.

    uv run python benchmarks/medmnist.py [--datasets pneumoniamnist breastmnist] [--seeds 3]
        [--config FILE.yaml] [--set train.epochs=40 --set evaluate.tta=true ...] [--tag NAME]

The stages of dvc.yaml up to train (ingest of the .npz, medmnist adapter, validate, split with the
official splits kept, balance, ...), once per seed (train.seed = 1..N); the threshold is chosen
on val (Youden) and test is scored once per seed. Params: BASE, then benchmarks/medmnist_<dataset>.yaml
(or --config, applied to every dataset), then --set. Every run is appended to
benchmarks/out/medmnist_runs.jsonl (val and test figures, params, wall time, load);
benchmarks/out/medmnist.json holds {dataset: {"median": {"auc", "acc"}, "seeds": [...]}}.
Configurations are chosen on val AUC / ACC only; test is reported, never used to choose.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, roc_auc_score, roc_curve

from pipeline import config
from pipeline.core import manifest

try:  # run as a script (benchmarks/ on sys.path) or imported as benchmarks.medmnist
    from graph import run_graph
    from medmnist_params import GOALS, MEDMNIST_V2, merge, params_for
except ImportError:  # pragma: no cover
    from benchmarks.graph import run_graph
    from benchmarks.medmnist_params import GOALS, MEDMNIST_V2, merge, params_for

log = logging.getLogger("benchmarks.medmnist")
HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared" / "datasets" / "medmnist"
OUT, RUNS = HERE / "out" / "medmnist.json", HERE / "out" / "medmnist_runs.jsonl"


def _scores(y: np.ndarray, prob: np.ndarray, threshold: float) -> dict:
    return {
        "auc": round(float(roc_auc_score(y, prob)), 4),
        "acc": round(float(accuracy_score(y, prob >= threshold)), 4),
    }


def run_pipeline(flag: str, raw: dict) -> dict:
    """Run the real stages (dvc.yaml's graph up to train) in the current directory (an empty
    project root) on ../shared's .npz; score val and test with the saved model."""
    from pipeline.evaluation.predictions import load_model, predict_split

    source = Path("source")
    source.mkdir()
    shutil.copy(SHARED / f"{flag}.npz", source / f"{flag}.npz")
    raw = merge(raw, {"data": {"source": str(source.resolve())}})
    seconds = run_graph(raw, until="train")
    cfg = config.from_dict(raw)
    model = load_model(Path("models/model.keras"))
    label_map = manifest.read_json("models/label_map.json")
    pos = label_map["classes"].index(label_map["positive"])
    scores = {}
    for name in ("val", "test"):
        pred = predict_split(model, label_map, manifest.read(f"data/splits/{name}.csv"), cfg.evaluate, name)
        scores[name] = ((pred.y == pos).astype(int), pred.proba[:, pos])
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
        "monitor": summary.get("monitor"),
        "train_seconds": seconds.get("train"),
        "stage_seconds": seconds,
        "train_images_per_second": summary["train_images_per_second"],
    }


def run_one(flag: str, raw: dict, tag: str) -> dict:
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
        figures = run_pipeline(flag, raw)
    goal = GOALS.get(flag, (0.0, 0.0))
    return {
        "dataset": flag,
        "tag": tag,
        **figures,
        "goal": {"auc": goal[0], "acc": goal[1]},
        "goal_met": figures["test"]["auc"] >= goal[0] and figures["test"]["acc"] >= goal[1],
        "medmnist_v2": {k: {"auc": a, "acc": c} for k, (a, c) in MEDMNIST_V2.get(flag, {}).items()},
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "niceness": os.nice(0),
        "cpu_cores": os.cpu_count(),
        "params": raw,
    }


def summarize(records: list[dict]) -> dict:
    """{"median": {"auc", "acc"} over the seeds' test figures, "seeds": the records}."""
    return {
        "median": {k: round(statistics.median(r["test"][k] for r in records), 4) for k in ("auc", "acc")},
        "median_val": {k: round(statistics.median(r["val"][k] for r in records), 4) for k in ("auc", "acc")},
        "min_test_auc": min(r["test"]["auc"] for r in records),
        "seeds": records,
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
    parser.add_argument(
        "--seeds", type=int, default=3, help="train.seed = 1..N per dataset (median reported)"
    )
    parser.add_argument("--tag", default="", help="a name for this configuration in the runs log")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    results = json.loads(OUT.read_text()) if OUT.is_file() else {}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    for flag in args.datasets:
        records = []
        for seed in range(1, args.seeds + 1):
            raw = params_for(flag, args.config, [*args.sets, f"train.seed={seed}"])
            record = {"seed": seed, **run_one(flag, raw, args.tag)}
            records.append(record)
            with RUNS.open("a") as fh:
                fh.write(json.dumps(record) + "\n")
            log.info("%s seed %d: val %s test %s", flag, seed, record["val"], record["test"])
        results[flag] = summarize(records)
        OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(
        f"\n{'dataset':16s} {'seeds':>5s} {'val AUC/ACC':>12s} {'test AUC/ACC (median)':>22s} {'min AUC':>8s} {'goal':>10s}"
    )
    for flag in args.datasets:
        r, goal = results[flag], GOALS[flag]
        print(f"{flag:16s} {len(r['seeds']):5d} {r['median_val']['auc']:.3f}/{r['median_val']['acc']:.3f}"
              f"  {r['median']['auc']:.3f}/{r['median']['acc']:.3f}             {r['min_test_auc']:.3f}"
              f"  {goal[0]:.3f}/{goal[1]:.2f}")  # fmt: skip
    print(f"wrote {OUT} and appended to {RUNS}")


if __name__ == "__main__":
    main()
