"""A seed ensemble assembled from kept kermany.py runs (not a test): what train.ensemble buys.

    uv run python benchmarks/kermany_ensemble.py --preset kermany-3class --tag k3-128-b20214 [--seeds 3]
    uv run python benchmarks/kermany_ensemble.py --preset kermany-3class --score-test k3-128-b20214-ens

`train.ensemble: N` with `train.seed: S` fits members with seeds S..S+N-1, each as one run with
that seed would (pipeline.training.members), and exports their average
(pipeline.models.ensemble.average). So the N kept single-seed runs of a tag (seed1..seedN) already
hold the members: this averages their models into benchmarks/out/kermany/<tag>-ens-seed1, copied
from the first seed's run (same split and arrays: the proxy split does not depend on train.seed),
and appends its val figures (TTA as the preset) to kermany_runs.jsonl. The ensemble costs N times
the training of one member; the single-seed medians of the same tag are its like-for-like baseline.
--score-test scores test once there, as kermany.py does for a run chosen on val. --tta-off
prints the val figures of every kept run of a tag (seeds and ensemble) with and without TTA.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import shutil

try:
    from graph import val_scores
    from kermany import KEPT, RUNS, score_test
except ImportError:  # pragma: no cover
    from benchmarks.graph import val_scores
    from benchmarks.kermany import KEPT, RUNS, score_test

from pipeline.config import presets
from pipeline.evaluation.predictions import load_model
from pipeline.models import ensemble


def assemble(preset: str, tag: str, seeds: range) -> dict:
    """Average the kept models of `tag` (one per seed) into <tag>-ens-seed<first>; its val figures."""
    runs = [KEPT / f"{tag}-seed{s}" for s in seeds]
    missing = [str(r) for r in runs if not (r / "models" / "model.keras").is_file()]
    if missing:
        raise SystemExit(
            f"no kept model in {', '.join(missing)}: run benchmarks/kermany.py --tag {tag} first"
        )
    splits = {(r / "data" / "splits" / "val.csv").read_bytes() for r in runs}
    if len(splits) != 1:
        raise SystemExit(f"the runs of {tag} have different val splits: their models cannot be averaged")
    out = KEPT / f"{tag}-ens-seed{seeds.start}"
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(runs[0], out, ignore=shutil.ignore_patterns("checkpoints"))
    models = [load_model(r / "models" / "model.keras") for r in runs]
    model = ensemble.average(models, name=f"{tag}_x{len(models)}")
    model.save(out / "models" / "model.keras")
    tta = presets.load(preset).get("evaluate", {}).get("tta", False)
    with contextlib.chdir(out):
        val = val_scores(tta)
    return {
        "tag": f"{tag}-ens",
        "seed": seeds.start,
        "preset": preset,
        "members": list(seeds),
        "val": val,
    }


def tta_off(tag: str) -> None:
    """Val figures of each kept run of `tag` (seed<N>, ens-seed<N>) with TTA on and off."""
    for run in sorted(KEPT.glob(f"{tag}-*seed*")):
        with contextlib.chdir(run):
            scores = {"run": run.name, "tta": val_scores(True), "no_tta": val_scores(False)}
        print(json.dumps(scores), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", required=True, choices=["kermany-binary", "kermany-3class"])
    parser.add_argument("--tag", help="the kermany.py tag whose seed runs are averaged")
    parser.add_argument("--seeds", type=int, default=3, help="members: seeds 1..N")
    parser.add_argument("--score-test", metavar="TAG", help="score test once for an assembled <tag>-ens")
    parser.add_argument(
        "--tta-off", action="store_true", help="val with and without TTA for --tag's kept runs"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if args.score_test:
        score_test(args.preset, args.score_test, range(1, 2))
        return
    if not args.tag:
        parser.error("--tag or --score-test is required")
    if args.tta_off:
        tta_off(args.tag)
        return
    record = assemble(args.preset, args.tag, range(1, 1 + args.seeds))
    with RUNS.open("a") as fh:
        fh.write(json.dumps(record) + "\n")
    print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
