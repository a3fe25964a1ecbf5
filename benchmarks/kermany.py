"""Kermany chest X-ray benchmark (not a test): a preset on ../shared/datasets/kermany-dev.

    uv run python benchmarks/kermany.py --preset kermany-binary [--set train.budget_images=70000 ...]
        [--seeds 1] [--first-seed 1] [--test] [--tag NAME]
    uv run python benchmarks/kermany.py --preset kermany-binary --score-test NAME [--seeds 1]

kermany-dev holds 1,732 real training-split films (one third of the patients, no official
split), so the preset's split becomes a patient-grouped val + held-out test carved from it
(split.val_fraction / test_fraction below; the proxy for the held-out check on the other
patients). The real stages run up to train (choosing: val figures only) in
benchmarks/out/kermany/<tag>-seed<N>/, kept, so --score-test runs evaluate there once for the
configuration chosen on val (--test: straight through evaluate). Every run is appended to
benchmarks/out/kermany_runs.jsonl with val (and test) figures, params, stage seconds and load.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import statistics
import time
from pathlib import Path

try:
    from graph import ROOT, run_graph, stage_io, val_scores
    from medmnist_params import dotted, merge
except ImportError:  # pragma: no cover
    from benchmarks.graph import ROOT, run_graph, stage_io, val_scores
    from benchmarks.medmnist_params import dotted, merge

from pipeline.config import presets

log = logging.getLogger("benchmarks.kermany")
HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "datasets" / "kermany-dev"
RUNS = HERE / "out" / "kermany_runs.jsonl"
KEPT = HERE / "out" / "kermany"  # one project dir per run (models/, data/splits, reports/)
PROXY_SPLIT = {"val_fraction": 0.15, "test_fraction": 0.2, "respect_source_split": False, "seed": 42}
GOALS = {"kermany-binary": ("roc_auc", 0.995), "kermany-3class": ("balanced_accuracy", 0.85)}


def params_for(preset: str, sets: list[str], seed: int) -> dict:
    raw = merge(presets.load(preset), {"data": {"source": str(DATA)}, "split": PROXY_SPLIT})
    raw = merge(raw, dotted(sets))
    raw.setdefault("train", {})["seed"] = seed
    return raw


def _test_scores() -> dict:
    m = json.loads(Path("reports/metrics.json").read_text())
    return {k: m.get(k) for k in ("roc_auc", "balanced_accuracy", "accuracy", "sensitivity", "specificity")}


def run_one(preset: str, raw: dict, test: bool, keep: Path) -> dict:
    """Run the stages in `keep` (kept: a chosen run's test is scored later with --score-test)."""
    t0, load = time.perf_counter(), os.getloadavg()
    shutil.rmtree(keep, ignore_errors=True)
    keep.mkdir(parents=True)
    with contextlib.chdir(keep):
        seconds = run_graph(raw, until="evaluate" if test else "train")
        out = {"val": val_scores(raw.get("evaluate", {}).get("tta", False))}
        summary = json.loads(Path("models/train_summary.json").read_text())
        split = json.loads(Path("reports/split.json").read_text())
        if test:
            out["test"] = _test_scores()
    n_train = summary["n_train"]
    return {
        "preset": preset,
        **out,
        "n_images": split["n_images"],
        "n_patients": split["n_patients"],
        "epochs_run": summary["epochs_run"],
        "best_epoch": summary["best_epoch"],
        "budget": summary.get("budget"),  # train.budget_images' step plan (None: train.epochs)
        "stage_seconds": seconds,
        "train_seconds_per_1k_train_images": round(1000 * seconds.get("train", 0) / n_train, 1),
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "loadavg_before": [round(x, 2) for x in load],
        "cpu_cores": os.cpu_count(),
        "params": raw,
    }


def score_test(preset: str, tag: str, seeds: range) -> None:
    """Run evaluate (test scored once) in the kept runs of `tag`; log a test record per seed."""
    from pipeline.cli import stage_runner
    from pipeline.core import dvc_files

    for seed in seeds:
        # ingest (the images, if removed) then evaluate on the kept models/ and data/splits
        with contextlib.chdir(KEPT / f"{tag}-seed{seed}"):
            for stage in ("ingest", "evaluate"):
                name, ins, outs = stage_io(dvc_files.stages(ROOT / "dvc.yaml")[stage]["cmd"])
                stage_runner.run_stage(name, Path("params.yaml"), ins, outs)
            record = {
                "tag": tag,
                "seed": seed,
                "preset": preset,
                "test": _test_scores(),
                "scored": "test once",
            }
        with RUNS.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        print(json.dumps(record), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="kermany-binary", choices=sorted(GOALS))
    parser.add_argument("--set", dest="sets", action="append", default=[], help="section.key=value")
    parser.add_argument("--seeds", type=int, default=1, help="train.seed = 1..N")
    parser.add_argument("--first-seed", type=int, default=1, help="train.seed = K..K+N-1 instead")
    parser.add_argument(
        "--test", action="store_true", help="also score the held-out test (chosen configs only)"
    )
    parser.add_argument("--tag", default="")
    parser.add_argument("--score-test", metavar="TAG", help="score test once for a kept run chosen on val")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    RUNS.parent.mkdir(parents=True, exist_ok=True)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    if args.score_test:
        score_test(args.preset, args.score_test, seeds)
        return
    records = []
    for seed in seeds:
        keep = KEPT / f"{args.tag or args.preset}-seed{seed}"
        raw = params_for(args.preset, args.sets, seed)
        record = {"tag": args.tag, "seed": seed, **run_one(args.preset, raw, args.test, keep)}
        records.append(record)
        with RUNS.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        print(json.dumps({k: record[k] for k in ("tag", "seed", "val", "epochs_run", "best_epoch", "stage_seconds")}
                         | ({"test": record["test"]} if "test" in record else {})), flush=True)  # fmt: skip
    key, goal = GOALS[args.preset]
    if args.test:
        median = statistics.median(r["test"][key] for r in records)
        print(f"{args.preset}: median test {key} {median:.4f} over {len(records)} seed(s) (goal {goal})")


if __name__ == "__main__":
    main()
