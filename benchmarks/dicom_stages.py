"""DICOM vs JPEG through the stages (not a test): the same kermany-dev pictures in two containers.

    uv run python benchmarks/dicom_stages.py [--side 256] [--image-size 64] [--epochs 8] [--seed 0]

Every kermany-dev JPEG (byte-identical copies once) is shrunk to --side px (long side) and written once as JPEG (quality 95);
its DICOM twin is made from that JPEG's decoded pixels (benchmarks/dicom.py encode_film: random
MONOCHROME1/2, 8/12/16-bit, uncompressed/RLE/JPEG 2000, full-range window). Both are named
`<class>/<pseudonym>_<stem>` with the pseudonym of the Kaggle patient, so imagefolder (patient_regex)
and dicom (pseudonym(PatientID)) find the same patients and split alike. dvc.yaml's stages run up to
evaluate in benchmarks/out/dicom_stages/<arm>/ with the same params; the test ROC AUCs are
compared (goal: within .005). Results go into benchmarks/results/dicom.json under "stages".
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import random
import shutil
import time
from pathlib import Path, PurePosixPath

import cv2
import pandas as pd
import yaml

os.environ.setdefault("MEDPIPE_PSEUDONYM_KEY", "benchmark-dicom-stages-key")  # before pipeline imports

try:
    from dicom import KERMANY, RESULT, encode_film
    from graph import ROOT, run_graph
except ImportError:  # pragma: no cover
    from benchmarks.dicom import KERMANY, RESULT, encode_film
    from benchmarks.graph import ROOT, run_graph

from pipeline.config import from_dict
from pipeline.core import pseudonym
from pipeline.formats import get

log = logging.getLogger("benchmarks.dicom_stages")
OUT = Path(__file__).resolve().parent / "out" / "dicom_stages"
GOAL_AUC = 0.005


def write_twins(side: int, seed: int) -> int:
    data_cfg = from_dict({"data": {"format": "chest_xray"}}).data
    adapter, rng, n, seen = get("chest_xray"), random.Random(seed), 0, set()
    for src in sorted(KERMANY.rglob("*.jpeg")):
        digest = hashlib.sha256(src.read_bytes()).hexdigest()
        if digest in seen:  # kermany-dev holds byte-identical copies: validate would drop them
            continue  # from the JPEG arm only (the DICOM twins differ in their UIDs)
        seen.add(digest)
        parsed = adapter.parse(PurePosixPath(src.relative_to(KERMANY).as_posix()), data_cfg)
        gray = cv2.imread(str(src), cv2.IMREAD_GRAYSCALE)
        scale = side / max(gray.shape)
        if scale < 1:
            gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        ok, jpeg = cv2.imencode(".jpg", gray, [cv2.IMWRITE_JPEG_QUALITY, 95])
        assert ok
        pixels = cv2.imdecode(jpeg, cv2.IMREAD_GRAYSCALE)
        name = f"{pseudonym.pseudonym(parsed.patient_id)}_{src.stem}"
        for arm, data in (
            ("jpeg", jpeg.tobytes()),
            ("dicom", encode_film(pixels, rng, parsed.patient_id)[0]),
        ):
            dest = OUT / "source" / arm / src.parent.name / f"{name}.{'jpeg' if arm == 'jpeg' else 'dcm'}"
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        n += 1
    return n


def run_arm(arm: str, over: dict) -> dict:
    work = OUT / arm
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    fmt = {"format": "dicom"} if arm == "dicom" else {"format": "imagefolder"}
    over = {**over, "data": {**over["data"], **fmt, "source": str(OUT / "source" / arm)}}
    for section, values in over.items():
        for key, value in values.items():
            params[section][key] = value
    with contextlib.chdir(work):
        start = time.perf_counter()
        seconds = run_graph(params, until="evaluate")
        metrics = json.loads(Path("reports/metrics.json").read_text())
        test = sorted(set(pd.read_csv("data/splits/test.csv")["patient_id"]))
    return {
        "roc_auc": metrics["roc_auc"],
        "n_test": metrics.get("n_test"),
        "test_patients": test,
        "seconds": round(time.perf_counter() - start, 1),
        "stage_seconds": {k: v for k, v in seconds.items() if not k.endswith("_cpu")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=256)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    shutil.rmtree(OUT / "source", ignore_errors=True)
    n = write_twins(args.side, args.seed)
    over = {
        "data": {"patient_regex": r"^(?P<patient>P[0-9a-f]{20})_"},
        "preprocess": {"image_size": args.image_size, "channels": 1},
        "train": {"epochs": args.epochs, "batch_size": 32},
        "evaluate": {"bootstrap": 0},
        "validate": {"max_quarantine_fraction": 0.01},
    }
    arms = {arm: run_arm(arm, over) for arm in ("jpeg", "dicom")}
    diff = round(abs(arms["dicom"]["roc_auc"] - arms["jpeg"]["roc_auc"]), 4)
    same_split = arms["dicom"]["test_patients"] == arms["jpeg"]["test_patients"]
    for r in arms.values():
        r["test_patients"] = len(r["test_patients"])
    stages = {
        "films": n, "side": args.side, "image_size": args.image_size, "epochs": args.epochs,
        "model": "baseline_cnn", "arms": arms, "auc_abs_diff": diff, "same_test_patients": same_split, "goal": GOAL_AUC, "met": diff <= GOAL_AUC,
    }  # fmt: skip
    result = json.loads(RESULT.read_text()) if RESULT.exists() else {}
    result["stages"] = stages
    RESULT.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{n} kermany-dev pictures at {args.side} px, image_size {args.image_size}, {args.epochs} epochs:")
    for arm, r in arms.items():
        print(f"  {arm:6} test ROC AUC {r['roc_auc']:.4f}  ({r['seconds']} s)")
    print(f"  same test patients in both arms: {same_split}")
    print(f"  |dicom - jpeg| = {diff} (goal <= {GOAL_AUC}): {'met' if stages['met'] else 'NOT met'}")


if __name__ == "__main__":
    main()
