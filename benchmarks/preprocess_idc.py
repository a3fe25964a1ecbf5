"""Preprocess stage at IDC scale vs the in-memory decode limit (#10's CPU goal; not a test).

    uv run python benchmarks/preprocess_idc.py [--n 277524] [--pairs 3]

Generates N IDC-layout 50x50 PNGs once under --cache (--dataset fast: benchmarks/idc_epoch.py's
forked writer, noise + a class square, ~2 min for 277k on 2 cores; --dataset prep:
benchmarks/prep.py's tissue-like generator, one process, ~40 img/s here), splits them by patient
70/15/15 into the balanced/splits manifests the stage reads, then alternates on the same files,
each in a fresh child process after os.sync() and a settle:
  (b) the decode limit of benchmarks/prep.py (benchmarks/prep_refs.py `limit`: cv2.imdecode of
      bytes already in memory, all cores, threads and forked processes; the better one counts),
  the preprocess stage's own run() (pipeline.stages.preprocess: decode + resize into the .npy
      files, manifests copied, sha256 in meta.json) on the same files, after one untimed read of
      every file (page cache warm, as (b) reads its bytes untimed), under /usr/bin/time -v.
Figure: median over the pairs of stage img/s / (b) img/s (goal >= 0.7), and the stage child's
peak RSS (goal <= 1.5 GB): /usr/bin/time's maximum RSS (the largest single process) and the
largest sums of RSS (counts pages shared with forked workers once per process: an upper bound)
and of PSS over the child and its forked workers, sampled every 0.1 s.
Writes benchmarks/out/preprocess_idc.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
log = logging.getLogger("benchmarks.preprocess_idc")
GOALS = {"stage_vs_limit": 0.7, "peak_rss_mb": 1536}


def tree_memory_mb(pid: int) -> tuple[float, float]:
    """(sum of RSS, sum of PSS) over a process and its children, MiB. RSS counts the pages forked
    workers share with the parent once per process (an upper bound); PSS splits them."""
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0, 0.0
    rss = pss = 0
    for p in procs:
        try:
            rss += p.memory_info().rss
            pss += (
                int(
                    re.search(r"^Pss:\s+(\d+)", Path(f"/proc/{p.pid}/smaps_rollup").read_text(), re.M).group(
                        1
                    )
                )
                * 1024
            )
        except (psutil.NoSuchProcess, FileNotFoundError, ProcessLookupError, AttributeError):
            pass
    return rss / 2**20, pss / 2**20


def stage_child(work: Path, reader: str = "stage") -> dict:
    """In a fresh process: warm-read every file, then time pipeline.stages.preprocess.run
    (reader "pathlib": files read with Path.read_bytes, as before images.read_bytes)."""
    import pandas as pd

    from pipeline import config
    from pipeline.core import images
    from pipeline.stages import preprocess

    if reader == "pathlib":
        images.read_bytes = lambda path: Path(path).read_bytes()

    paths = pd.concat(
        [
            pd.read_csv(work / "balanced/train.csv"),
            *(pd.read_csv(work / f"splits/{s}.csv") for s in ("val", "test")),
        ]
    )["path"].tolist()
    start = time.perf_counter()
    for p in paths:
        Path(p).read_bytes()
    warm_s = time.perf_counter() - start
    peak = [0.0, 0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.1):
            peak[:] = map(max, peak, tree_memory_mb(os.getpid()))

    threading.Thread(target=sample, daemon=True).start()
    cfg = config.from_dict({"preprocess": {"image_size": 50, "channels": 3}})
    start = time.perf_counter()
    summary = preprocess.run(
        cfg,
        {"balanced": work / "balanced", "splits": work / "splits"},
        {"preprocessed": work / "preprocessed"},
    )
    seconds = time.perf_counter() - start
    done.set()
    return {
        "img_per_s": len(paths) / seconds,
        "seconds": seconds,
        "writer_img_per_s": summary["img_per_s"],
        "tree_rss_peak_mb": peak[0],
        "tree_pss_peak_mb": peak[1],
        "warm_read_s": warm_s,
        "meta_sha256": {
            k: v["npy_sha256"]
            for k, v in json.loads((work / "preprocessed/meta.json").read_text())["splits"].items()
        },
    }


def run_stage(work: Path, reader: str = "stage") -> dict:
    from benchmarks.prep_refs import settle

    settle()
    load = os.getloadavg()[0]
    proc = subprocess.run(
        ["/usr/bin/time", "-v", sys.executable, __file__, "--child", str(work), "--reader", reader],
        check=True,
        capture_output=True,
        text=True,
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    max_rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    return {**result, "time_v_max_rss_mb": max_rss_kb / 1024, "load1_before": load}


def make_manifests(source: Path, work: Path) -> int:
    import pandas as pd

    paths = sorted(str(p) for p in source.rglob("*.png"))
    df = pd.DataFrame({"path": paths})
    df["patient_id"] = df["path"].map(lambda p: Path(p).parts[-3])
    df["label"] = df["path"].map(lambda p: int(Path(p).parts[-2]))
    patients = sorted(df["patient_id"].unique())
    cut1, cut2 = int(len(patients) * 0.7), int(len(patients) * 0.85)
    part = {p: ("train" if i < cut1 else "val" if i < cut2 else "test") for i, p in enumerate(patients)}
    for d in ("balanced", "splits"):
        (work / d).mkdir(parents=True, exist_ok=True)
    for name, sub in (("train", "balanced"), ("val", "splits"), ("test", "splits")):
        df[df["patient_id"].map(part) == name].to_csv(work / sub / f"{name}.csv", index=False)
    return len(df)


def ensure_dataset(n: int, cache: Path, kind: str) -> Path:
    if kind == "prep":
        from benchmarks.prep import ensure_dataset as prep_dataset

        return prep_dataset(n, cache)
    from benchmarks.idc_epoch import write_dataset

    root = cache / f"fast-n{n}"
    if not (root / ".complete").is_file():
        start = time.perf_counter()
        write_dataset(root, n)
        (root / ".complete").write_text(str(n))
        log.info("generated %d PNGs in %.0f s under %s", n, time.perf_counter() - start, root)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=277_524)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/medpipe-bench-idc"))
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--dataset", choices=["fast", "prep"], default="fast")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="(b)'s workers")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/out/preprocess_idc.json")
    parser.add_argument(
        "--readers",
        nargs="+",
        default=["stage"],
        choices=["stage", "pathlib"],
        help="stage variants per pair (pathlib: Path.read_bytes, the reader before images.read_bytes)",
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--reader", default="stage", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        logging.basicConfig(level=logging.WARNING)
        print(json.dumps(stage_child(args.child, args.reader)))
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    from benchmarks.prep_refs import child

    source = ensure_dataset(args.n, args.cache.resolve(), args.dataset)
    with tempfile.TemporaryDirectory(prefix="medpipe-pre-") as tmp:
        work = Path(tmp)
        n = make_manifests(source, work)
        paths = [str(p) for p in source.rglob("*.png")]
        samples = []
        for i in range(args.pairs):
            lim = child("limit", paths, workers=args.workers, one_core=False)
            best = max(lim["threads"], lim["processes"])
            order = args.readers if i % 2 == 0 else args.readers[::-1]  # alternate the order too
            stages = {r: run_stage(work, r) for r in order}
            sample = {
                "limit": lim,
                "stage": stages[args.readers[0]],
                "ratio": stages[args.readers[0]]["img_per_s"] / best,
            }
            sample["by_reader"] = {r: {**st, "ratio": st["img_per_s"] / best} for r, st in stages.items()}
            samples.append(sample)
            for r, st in sample["by_reader"].items():
                log.info(
                    "pair %d: (b) %.0f img/s (load %.2f), stage[%s] %.0f img/s (load %.2f), ratio %.2f, "
                    "peak RSS %.0f MB (time -v), tree sum RSS %.0f / PSS %.0f MB",
                    i + 1, best, lim["load1_before"], r, st["img_per_s"], st["load1_before"],
                    st["ratio"], st["time_v_max_rss_mb"], st["tree_rss_peak_mb"], st["tree_pss_peak_mb"],
                )  # fmt: skip
    result = {
        "n": n,
        "dataset": args.dataset,
        "cpu_count": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "samples": samples,
        "median_limit_img_per_s": statistics.median(
            max(s["limit"]["threads"], s["limit"]["processes"]) for s in samples
        ),
        "median_stage_img_per_s": statistics.median(s["stage"]["img_per_s"] for s in samples),
        "median_ratio": statistics.median(s["ratio"] for s in samples),
        "median_ratio_by_reader": {
            r: statistics.median(s["by_reader"][r]["ratio"] for s in samples) for r in args.readers
        },
        "peak_rss_mb": {
            "time_v_max": max(s["stage"]["time_v_max_rss_mb"] for s in samples),
            "process_tree_rss_sum": max(s["stage"]["tree_rss_peak_mb"] for s in samples),
            "process_tree_pss_sum": max(s["stage"].get("tree_pss_peak_mb", 0.0) for s in samples),
        },
        "bit_identical_across_pairs": len({json.dumps(s["stage"]["meta_sha256"]) for s in samples}) == 1,
        "goals": GOALS,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}, indent=2))


if __name__ == "__main__":
    main()
