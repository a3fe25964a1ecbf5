"""Drift power benchmark (issue #19; not a test): is a batch of 100 new films from a shifted source
flagged, and one from the same source not? Then the cost at 10,000 new vs 50,000 champion images.

    uv run python benchmarks/drift.py [--trials 20] [--epochs 3]

Real images: ../shared kermany-dev (1,732 paediatric chest films, 224 px JPEG) and PneumoniaMNIST
(../shared medmnist, "another dataset of the same modality", 28 px upsampled to 224 px JPEG).
kermany-dev is split by patient: ~60 % trains the embedding model and is the reference (the
champion's training images, as the changes stage uses them), the rest is the pool new batches are
drawn from. The model: pipeline.models baseline_cnn at 64 px gray, trained here for --epochs (Adam,
default augmentation), embeddings = its 128-wide "fc" layer (the penultimate one). A batch is
flagged when any property_drift entry or the mmd_test is flagged, as the changes stage reports.
Writes benchmarks/results/drift.json and prints a table. The cost part runs in a child process
(its own peak RSS). Defaults of pipeline.drift are what this measures.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from pipeline.core import images
from pipeline.drift.diff import manifest_diff, new_rows
from pipeline.drift.mmd import mmd_test
from pipeline.drift.properties import image_properties, property_drift

log = logging.getLogger("benchmarks.drift")
HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared" / "datasets"
OUT = HERE / "results" / "drift.json"
SIZE, BATCH, SEED = 64, 100, 0
PATIENT = re.compile(r"^(NORMAL2-IM-\d+|IM-\d+|person\d+)")
GAMMA, MILD_GAMMA = 0.7, 0.85
WINDOW16 = (64, 4096)  # 16-bit re-encoding: v -> 64 v + 4096 (another scanner's window)


def rows_for(names: list[str], classes: list[str], raw: list[np.ndarray]) -> pd.DataFrame:
    """validated-style rows (what validate records) for decoded originals."""
    return pd.DataFrame(
        {
            "path": names,
            "class_name": classes,
            "height": [r.shape[0] for r in raw],
            "width": [r.shape[1] for r in raw],
            "channels": [r.shape[2] if r.ndim == 3 else 1 for r in raw],
            "dtype": [str(r.dtype) for r in raw],
        }
    )


def encoded_case(names, classes, gray224: list[np.ndarray], ext: str, window=None) -> dict:
    """Encode each film as the new source would deliver it; decode it as validate + preprocess do."""
    blobs = [cv2.imencode(ext, g)[1].tobytes() for g in gray224]
    raw = [images.decode_raw(b) for b in blobs]
    arrays = np.stack([images.preprocess_bytes(b, SIZE, channels=1, window=window) for b in blobs])
    return {"rows": rows_for([f"{n}{ext}" for n in names], classes, raw), "arrays": arrays}


def load_kermany() -> tuple[list[Path], list[np.ndarray], np.ndarray]:
    """kermany-dev files, their decoded originals and their 64 px gray arrays (as preprocess makes)."""
    paths = sorted((SHARED / "kermany-dev").glob("*/*.jpeg"))
    raw = [images.decode_raw(p.read_bytes()) for p in paths]
    return paths, raw, np.stack([images.preprocess(p, SIZE, channels=1) for p in paths])


def build_cases(paths: list[Path], raw: list[np.ndarray], arrays: np.ndarray, pool: np.ndarray) -> dict:
    """Per case: validated-style rows + 64 px arrays of len(pool) films (trials sample 100)."""
    names, classes = [paths[i].stem for i in pool], [paths[i].parent.name for i in pool]
    gray = [cv2.cvtColor(raw[i], cv2.COLOR_BGR2GRAY) if raw[i].ndim == 3 else raw[i] for i in pool]
    same = {
        "rows": rows_for([f"{n}.jpeg" for n in names], classes, [raw[i] for i in pool]),
        "arrays": arrays[pool],
    }

    def gamma(g, value):
        return cv2.cvtColor(np.rint(255 * (g / 255.0) ** value).astype(np.uint8), cv2.COLOR_GRAY2BGR)

    deep = [g.astype(np.uint16) * WINDOW16[0] + WINDOW16[1] for g in gray]
    window = (float(min(d.min() for d in deep)), float(max(d.max() for d in deep)))  # validate's "observed"
    mnist = np.load(SHARED / "medmnist" / "pneumoniamnist.npz")
    pick = np.random.default_rng(SEED).choice(len(mnist["train_images"]), size=len(pool), replace=False)
    up = [cv2.resize(im, (224, 224), interpolation=cv2.INTER_LINEAR) for im in mnist["train_images"][pick]]
    mnist_classes = ["PNEUMONIA" if y else "NORMAL" for y in mnist["train_labels"][pick, 0]]
    return {
        "same source": same,
        "same, re-encoded JPEG": encoded_case(names, classes, [raw[i] for i in pool], ".jpeg"),
        f"gamma {GAMMA}": encoded_case(names, classes, [gamma(g, GAMMA) for g in gray], ".jpeg"),
        f"gamma {MILD_GAMMA} (mild)": encoded_case(
            names, classes, [gamma(g, MILD_GAMMA) for g in gray], ".jpeg"
        ),
        "16-bit PNG, other window": encoded_case(names, classes, deep, ".png", window=window),
        "PneumoniaMNIST upsampled": encoded_case(
            [f"mnist{i}" for i in pick],
            mnist_classes,
            [cv2.cvtColor(u, cv2.COLOR_GRAY2BGR) for u in up],
            ".jpeg",
        ),
    }


def split_by_patient(paths: list[Path], fraction: float, among: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices `among` split in two, `fraction` of the patients first; a patient's films stay together."""
    patients = np.array([PATIENT.match(p.name).group(1) if PATIENT.match(p.name) else p.name for p in paths])
    unique = np.unique(patients[among])
    chosen = set(np.random.default_rng(SEED).permutation(unique)[: int(fraction * len(unique))])
    inside = np.array([patients[i] in chosen for i in among], dtype=bool)
    return among[inside], among[~inside]


def train_embedder(arrays: np.ndarray, labels: np.ndarray, epochs: int):
    """baseline_cnn from pipeline.models trained on the reference films; returns (fc model, seconds)."""
    import keras

    from pipeline.config import TrainConfig
    from pipeline.models import build_model

    t0 = time.perf_counter()
    model = build_model(TrainConfig(model="baseline_cnn", seed=SEED), arrays.shape[1:], 2)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    model.fit(arrays.astype("float32"), labels, epochs=epochs, batch_size=32, verbose=2)
    return keras.Model(model.inputs, model.get_layer("fc").output), time.perf_counter() - t0


def embed(model, arrays: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict(arrays.astype("float32"), batch_size=256, verbose=0), dtype=np.float64)


def run_trials(ref_props, ref_emb, case: dict, emb: np.ndarray, trials: int, seed: int) -> dict:
    """Per trial: 100 films of the case; flagged = any property flag or the MMD flag. Each trial's
    MMD p-value and its property entries with p < 0.05 are kept (the alpha / min_effect grid)."""
    rng = np.random.default_rng(seed)
    flags, props, mmd, seconds, which, kept = 0, 0, 0, [], {}, []
    for trial in range(trials):
        pick = rng.choice(len(case["arrays"]), size=BATCH, replace=False)
        t0 = time.perf_counter()
        new = image_properties(case["rows"].iloc[pick].reset_index(drop=True), case["arrays"][pick])
        drift = property_drift(ref_props, new)
        test = mmd_test(ref_emb, emb[pick], seed=trial)
        seconds.append(time.perf_counter() - t0)
        hit = [e for e in drift if e["flag"]]
        for e in hit:
            which[f"{e['name']}/{e['class']}"] = which.get(f"{e['name']}/{e['class']}", 0) + 1
        props += bool(hit)
        mmd += test["flag"]
        flags += bool(hit) or test["flag"]
        low = [
            [e["name"], e["class"], round(e["distance"], 4), e["p_value"]]
            for e in drift
            if e["p_value"] < 0.05
        ]
        kept.append({"mmd_p": test["p_value"], "properties_p_below_0.05": low})
    return {
        "flagged": flags / trials,
        "property_flagged": props / trials,
        "mmd_flagged": mmd / trials,
        "property_flags": dict(sorted(which.items())),
        "seconds_per_batch": float(np.median(seconds)),
        "trials": kept,
    }


def grid(cases: dict, alphas=(0.05, 0.02, 0.01), effects=(0.2, 0.25, 0.3, 0.4)) -> list[dict]:
    """Batch flag rate per case if alpha (both tests) and min_effect had other values."""
    out = []
    for alpha in alphas:
        for effect in effects:
            row = {"alpha": alpha, "min_effect": effect}
            for name, result in cases.items():
                hits = [
                    t["mmd_p"] < alpha
                    or any(p < alpha and d >= effect for _, _, d, p in t["properties_p_below_0.05"])
                    for t in result["trials"]
                ]
                row[name] = float(np.mean(hits))
            out.append(row)
    return out


def synthetic_manifests(n_then: int, n_new: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A champion's manifest and tonight's: 1 % of the old films gone, n_new added."""
    n = n_then + n_new
    rows = pd.DataFrame(
        {
            "path": [f"{'NP'[i % 2]}/film{i:06d}.jpeg" for i in range(n)],
            "sha256": [f"{i:064x}" for i in range(n)],
            "class_name": np.where(np.arange(n) % 2, "PNEUMONIA", "NORMAL"),
            "patient_id": [f"p{i // 3}" for i in range(n)],
            "split": np.random.default_rng(SEED).choice(["train", "val", "test"], n, p=[0.7, 0.15, 0.15]),
            "height": 224,
            "width": 224,
            "channels": 3,
            "dtype": "uint8",
        }
    )
    return rows.iloc[:n_then], rows.iloc[n_then // 100 :].reset_index(drop=True)


def cost_part(n_then: int = 50_000, n_new: int = 10_000, width: int = 128) -> dict:
    """Time the drift functions at the cost-goal size (run in a child: its own peak RSS)."""
    _, _, films = load_kermany()
    rng = np.random.default_rng(SEED)
    then, now = synthetic_manifests(n_then, n_new)
    arrays_then, arrays_new = (
        films[rng.integers(0, len(films), n_then)],
        films[rng.integers(0, len(films), n_new)],
    )
    emb_then, emb_new = rng.normal(size=(n_then, width)), rng.normal(size=(n_new, width))
    seconds, t0 = {}, time.perf_counter()
    diff = manifest_diff(then, now)
    new = new_rows(then, now)
    seconds["manifest_diff + new_rows"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    props_then, props_new = image_properties(then, arrays_then), image_properties(new, arrays_new)
    seconds["image_properties (60,000 films)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    drift = property_drift(props_then, props_new)
    seconds["property_drift"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    mmd = mmd_test(emb_then, emb_new)
    seconds[f"mmd_test ({n_then:,} x {width} vs {n_new:,} x {width})"] = time.perf_counter() - t0
    seconds["total"] = sum(seconds.values())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    assert diff["added"] == n_new and len(new) == n_new, diff
    return {
        "seconds": seconds,
        "peak_rss_mib": peak,
        "n_entries": len(drift),
        "mmd_n": [mmd["n_ref"], mmd["n_new"]],
    }


def defaults() -> dict:
    import inspect

    prop, mmd = inspect.signature(property_drift).parameters, inspect.signature(mmd_test).parameters
    return {
        "property_drift": {k: prop[k].default for k in ("alpha", "min_effect")},
        "mmd_test": {k: mmd[k].default for k in ("alpha", "n_perm", "max_n")},
    }


def power_part(trials: int, epochs: int) -> dict:
    t_load = time.perf_counter()
    paths, raw, arrays = load_kermany()
    labels = np.array([p.parent.name == "PNEUMONIA" for p in paths], dtype=np.int64)
    ref, rest = split_by_patient(paths, 0.5, np.arange(len(paths)))
    unseen, pool = split_by_patient(paths, 0.4, rest)
    cases = build_cases(paths, raw, arrays, pool)
    t_load = time.perf_counter() - t_load
    model, t_train = train_embedder(arrays[ref], labels[ref], epochs)
    rows = rows_for([p.name for p in paths], [p.parent.name for p in paths], raw)
    ref_props = image_properties(rows.iloc[ref].reset_index(drop=True), arrays[ref])
    ref_emb, unseen_emb = embed(model, arrays[ref]), embed(model, arrays[unseen])
    results = {}
    for name, case in cases.items():
        emb = embed(model, case["arrays"])
        results[name] = run_trials(ref_props, ref_emb, case, emb, trials, SEED)
        results[name]["mmd_flagged_vs_unseen_reference"] = run_trials(
            ref_props, unseen_emb, case, emb, trials, SEED
        )["mmd_flagged"]
        log.info("%s: %s", name, results[name])
    t0 = time.perf_counter()
    embed(model, arrays[np.random.default_rng(SEED).integers(0, len(arrays), 10_000)])
    return {
        "films": {"reference": len(ref), "unseen_reference": len(unseen), "pool": len(pool), "batch": BATCH},
        "model": {
            "name": "baseline_cnn (pipeline.models), 64 px gray, embedding = 128-wide fc layer",
            "epochs": epochs,
            "optimizer": "Adam 1e-3, batch 32",
            "train_seconds": round(t_train, 1),
        },
        "prepare_seconds": round(t_load, 1),
        "embed_10000_films_seconds": round(time.perf_counter() - t0, 1),
        "trials": trials,
        "cases": results,
        "grid": grid(results),
    }


def table(out: dict) -> str:
    lines = [f"{'case':28} {'flagged':>8} {'property':>9} {'MMD':>6} {'MMD unseen ref':>15} {'s/batch':>8}"]
    for name, r in out["power"]["cases"].items():
        lines.append(
            f"{name:28} {r['flagged']:>8.0%} {r['property_flagged']:>9.0%} {r['mmd_flagged']:>6.0%} "
            f"{r['mmd_flagged_vs_unseen_reference']:>15.0%} {r['seconds_per_batch']:>8.2f}"
        )
    cost = out["cost"]
    lines += [f"cost: {k}: {v:.2f} s" for k, v in cost["seconds"].items()]
    lines.append(
        f"cost: peak RSS {cost['peak_rss_mib']:.0f} MiB; embedding 10,000 films "
        f"{out['power']['embed_10000_films_seconds']} s"
    )
    names = list(out["power"]["cases"])
    lines.append("grid (flag rate per case): alpha min_effect | " + " | ".join(names))
    for row in out["power"]["grid"]:
        rates = " ".join(f"{row[n]:>5.0%}" for n in names)
        lines.append(f"  {row['alpha']:<5} {row['min_effect']:<4} {rates}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--part", choices=["all", "cost"], default="all")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.part == "cost":
        print(json.dumps(cost_part()))
        return
    started, load = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), list(__import__("os").getloadavg())
    child = subprocess.run(
        [sys.executable, __file__, "--part", "cost"], capture_output=True, text=True, check=True
    )
    out = {"defaults": defaults(), "cost": json.loads(child.stdout.strip().splitlines()[-1])}
    out["power"] = power_part(args.trials, args.epochs)
    out["machine"] = {
        "started": started,
        "platform": platform.platform(),
        "load_avg_at_start": load,
        "cpus": __import__("os").cpu_count(),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=2, default=float) + "\n")
    print(table(out))


if __name__ == "__main__":
    main()
