"""Cost of the changes stage (issue #19; not a test): 10,000 new images against a 50,000-image
champion, goal <= 60 s and peak RSS <= 2 GB on the 2-core host.

    uv run python benchmarks/changes_cost.py [--then 50000] [--new 10000] [--size 50]

Synthetic but stage-shaped: a validated manifest of `then` rows (50 patients per 1,000 images,
2 classes) with its split manifests as objects in a local DVC cache (the champion's lineage), the
current manifests = those rows + `new` added rows (half of them a brighter source), and the
preprocess layout (data/preprocessed/<split>.npy, uint8 size x size x 3, memory-mapped). The
champion is pipeline.models' baseline_cnn at that size (untrained: cost does not depend on the
weights), handed over in memory: the MLflow download of the model is not timed. Timed: reading
both manifests, pipeline.changes.compare.compare (diff, properties of the 5,000-row reference and
the new rows, embeddings of <= max_reference training + all new images, MMD, champion scoring with
bootstrap CIs) and writing changes.json/html/csv. Runs in a child process for its own peak RSS.
Writes benchmarks/results/changes_cost.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "changes_cost.json"
CLASSES = ["non_idc", "idc"]


def _rows(n: int, start: int, rng: np.random.Generator, tag: str) -> pd.DataFrame:
    label = rng.integers(0, 2, n)
    return pd.DataFrame(
        {
            "path": [f"data/raw/{tag}/{i}.png" for i in range(start, start + n)],
            "sha256": [f"{tag}{i:060d}" for i in range(start, start + n)],
            "label": label,
            "class_name": np.array(CLASSES)[label],
            "patient_id": [f"{tag}p{i // 20}" for i in range(start, start + n)],
            "height": 50,
            "width": 50,
            "channels": 3,
            "dtype": "uint8",
        }
    )


def build(root: Path, n_then: int, n_new: int, size: int) -> dict:
    """The project files; returns the champion hashes."""
    import hashlib

    from pipeline.core import manifest

    rng = np.random.default_rng(0)
    then = _rows(n_then, 0, rng, "old")
    then["split"] = rng.choice(["train", "val", "test"], n_then, p=[0.7, 0.15, 0.15])
    new = _rows(n_new, 0, rng, "new")
    new["split"] = rng.choice(["train", "val", "test"], n_new, p=[0.7, 0.15, 0.15])

    def cache(data: bytes, suffix: str = "") -> str:
        md5 = hashlib.md5(data).hexdigest()
        path = root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / (md5[2:] + suffix)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return md5 + suffix

    entries = [
        {"md5": cache(then[then.split == s].to_csv(index=False).encode()), "relpath": f"{s}.csv"}
        for s in ("test", "train", "val")
    ]
    hashes = {
        "validated": cache(then.drop(columns="split").to_csv(index=False).encode()),
        "splits": cache(json.dumps(entries).encode(), ".dir"),
    }
    now = pd.concat([then, new], ignore_index=True)
    manifest.write(now.drop(columns="split"), root / "data/interim/validated.csv")
    pre = root / "data/preprocessed"
    pre.mkdir(parents=True)
    meta = {"layout": 1, "image_size": size, "channels": 3, "window": None, "splits": {}}
    for split in ("train", "val", "test"):
        rows = now[now.split == split].reset_index(drop=True)
        manifest.write(rows, root / "data/splits" / f"{split}.csv")
        manifest.write(rows, pre / f"{split}.csv")
        arr = np.lib.format.open_memmap(pre / f"{split}.npy", "w+", np.uint8, (len(rows), size, size, 3))
        bright = rows["path"].str.contains("/new/").to_numpy() & (np.arange(len(rows)) % 2 == 0)
        for start in range(0, len(rows), 4096):
            stop = min(start + 4096, len(rows))
            base = rng.normal(120, 25, (stop - start, 1, 1, 1)) + rng.normal(
                0, 15, (stop - start, size, size, 3)
            )
            base[bright[start:stop]] += 40
            arr[start:stop] = np.clip(base, 0, 255).astype(np.uint8)
        arr.flush()
        meta["splits"][split] = {"rows": len(rows)}
    (pre / "meta.json").write_text(json.dumps(meta))
    return hashes


def child(root: Path, size: int) -> None:
    """The timed part (in its own process); prints one JSON line."""
    import keras

    from pipeline import config
    from pipeline.changes import champion as champions
    from pipeline.changes import lineage
    from pipeline.changes.compare import compare
    from pipeline.changes.compute import write
    from pipeline.models import build_model

    hashes = json.loads((root / "hashes.json").read_text())
    cfg = config.from_dict({})
    model = build_model(cfg.train, (size, size, 3), 2)
    label_map = {"classes": CLASSES, "positive": "idc", "image_size": size, "channels": 3, "format": "idc"}
    champ = champions.Champion("bench", "1", "run", "none", 0.5, False, label_map, hashes)
    champions.load_model = lambda _champ: model  # in memory: the MLflow download is not timed
    keras.utils.set_random_seed(0)
    t0 = time.perf_counter()
    now = lineage.read_now(root / "data/interim/validated.csv", root / "data/splits")
    then = lineage.read_then(root, hashes)
    t1 = time.perf_counter()
    result = compare(cfg, champ, then, now, root / "data/preprocessed")
    t2 = time.perf_counter()
    out = {"summary": root / "changes.json", "report": root / "changes.html", "dir": root / "changes"}
    write(result, cfg, {**out, "headline": root / "headline.json"})
    t3 = time.perf_counter()
    doc = result.doc
    print(
        json.dumps(
            {
                "read_manifests_s": round(t1 - t0, 2),
                "compare_s": round(t2 - t1, 2),
                "write_s": round(t3 - t2, 2),
                "total_s": round(t3 - t0, 2),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "added": doc["added"],
                "drift_flags": sum(d["flag"] for d in doc["drift"]),
                "embedding_p": doc["embedding"]["p_value"],
                "champion_new_n": doc["champion_on_new"]["n"],
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--then", type=int, default=50_000)
    parser.add_argument("--new", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=50)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child), args.size)
        return
    with tempfile.TemporaryDirectory(prefix="changes-cost-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        (root / "hashes.json").write_text(json.dumps(build(root, args.then, args.new, args.size)))
        setup = time.perf_counter() - t0
        cmd = [sys.executable, __file__, "--child", str(root), "--size", str(args.size)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    result = {
        "then": args.then,
        "new": args.new,
        "image_size": args.size,
        "setup_s": round(setup, 1),
        **measured,
        "goal_total_s": 60,
        "goal_peak_rss_mb": 2048,
        "host": f"{platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores",
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    width = max(map(len, result))
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
