"""The prep benchmark's references, each run in a fresh child process (its memory its own):

  notebook  (a) the IDC notebook's loader: cv2.imread per file into a list, np.array, float32 / 255
  limit     (b) the decode limit: cv2.imdecode of bytes already in memory, on all cores
            (threads and forked processes, `--workers` each; optionally 1 core too)
  pass      the validate stage's decode pass, called as the stage calls it (decode_pass, kind auto),
            after one untimed read of every file (page cache warm, as for (b)'s in-memory bytes;
            warm_read_s shows it: ~4 s for 277k cached files. This VM pages out page cache left
            idle ~30 s (a DAMON pageout scheme), so at large n part of the pass may still hit disk)

`compare_pass_to_limit` alternates (b) and the pass on the same files (b, pass, b, pass, ...),
after os.sync() and a settle, so that both see the same host state; its figure is the median of
the per-pair ratios. Run as a script, this file is the child: it prints one JSON line.
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
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("prep_refs")
_BLOBS: list[bytes] = []  # (b)'s bytes, inherited by its forked workers


def peak_rss_mb(reset: bool = False) -> float:
    """This process's peak RSS since the last reset (VmHWM), in MiB; optionally reset it."""
    peak = int(re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) / 1024
    if reset:
        Path("/proc/self/clear_refs").write_text("5")
    return peak


def notebook(paths: list[str]) -> dict:
    """(a): per-file cv2.imread into a list, then np.array and float32 / 255."""
    base = peak_rss_mb(reset=True)
    start = time.perf_counter()
    x = np.array([cv2.imread(p) for p in paths]).astype(np.float32) / 255.0
    seconds = time.perf_counter() - start
    peak = peak_rss_mb()
    assert x.shape[0] == len(paths)
    return {
        "img_per_s": len(paths) / seconds,
        "peak_rss_mb": peak,
        "rss_mb_per_image": (peak - base) / len(paths),
    }


def _decode_range(bounds: tuple[int, int]) -> int:
    return sum(
        cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_UNCHANGED) is not None
        for b in _BLOBS[slice(*bounds)]
    )


def limit(paths: list[str], workers: int, one_core: bool) -> dict:
    """(b): imdecode of in-memory bytes; every mode uses `workers` workers except 1_core."""
    start = time.perf_counter()
    _BLOBS.extend(Path(p).read_bytes() for p in paths)  # read first, untimed
    read_s = time.perf_counter() - start
    bounds = [(i, min(i + 512, len(paths))) for i in range(0, len(paths), 512)]
    runs = {
        "threads": lambda: sum(ThreadPoolExecutor(workers).map(_decode_range, bounds)),
        "processes": lambda: sum(get_context("fork").Pool(workers).map(_decode_range, bounds)),
    }
    if one_core:
        runs = {"1_core": lambda: sum(map(_decode_range, bounds)), **runs}
    out = {}
    for label, run in runs.items():
        start = time.perf_counter()
        assert run() == len(paths)
        out[label] = len(paths) / (time.perf_counter() - start)
    return {**out, "read_s": read_s}


def validate_pass(paths: list[str], shas: list[str | None], workers: int, kind: str) -> dict:
    """The stage's decode pass (same call, same limits as the default params) on these files."""
    sys.path.insert(0, str(ROOT))
    from pipeline.config import ValidateConfig
    from pipeline.validation.checks import read_file
    from pipeline.validation.decode import Limits, decode_pass, pick_pool, resolve_workers

    start = time.perf_counter()
    for path in paths:  # untimed, like (b)'s read: the pass then measures decoding, not this VM's disk
        read_file(path)
    warm_s = time.perf_counter() - start
    v = ValidateConfig()
    columns, rate = decode_pass(paths, shas, Limits(v.min_side, v.max_side, v.max_pixels), workers, kind)
    assert all(r == "" for r in columns["reason"]), "the benchmark's files should all be valid"
    pool = pick_pool(kind, len(paths))
    return {"img_per_s": rate, "pool": pool, "workers": resolve_workers(workers), "warm_read_s": warm_s}


def settle(max_wait: float = 60.0) -> int:
    """os.sync(), then wait until Dirty + Writeback pages are < 16 MiB; returns the last kB seen."""
    os.sync()
    deadline = time.monotonic() + max_wait
    while True:
        meminfo = Path("/proc/meminfo").read_text()
        kb = sum(int(re.search(rf"^{k}:\s+(\d+)", meminfo, re.M).group(1)) for k in ("Dirty", "Writeback"))
        if kb < 16 * 1024 or time.monotonic() > deadline:
            time.sleep(2.0)  # let the flusher threads go idle
            return kb
        time.sleep(0.5)


def child(kind: str, paths: list[str], shas: list[str] | None = None, **options) -> dict:
    """Run one reference in a fresh Python process on these files; its figures plus loadavg."""
    listing = Path(f"/tmp/medpipe-bench-{os.getpid()}-{kind}.tsv")
    listing.write_text("\n".join(f"{p}\t{s}" for p, s in zip(paths, shas or [""] * len(paths), strict=True)))
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in options.items()]
    try:
        dirty_kb = settle()  # after writing the listing: its own writeback must not land in the run
        load = os.getloadavg()[0]
        out = subprocess.run(
            [sys.executable, __file__, kind, str(listing), *flags], check=True, capture_output=True, text=True
        ).stdout
    finally:
        listing.unlink(missing_ok=True)
    return {**json.loads(out.strip().splitlines()[-1]), "load1_before": load, "dirty_kb_before": dirty_kb}


def compare_pass_to_limit(
    paths: list[str], shas: list[str], workers: int, pairs: int, pass_workers: int = 0
) -> dict:
    """(b) and the pass alternated `pairs` times on the same files; per-pair ratios and their median.

    (b) runs `workers` workers (all cores: it is pure CPU); the pass runs `pass_workers`, by default
    the validate stage's own default (0 = pipeline.validation.decode.resolve_workers)."""
    samples = []
    for i in range(pairs):
        lim = child("limit", paths, workers=workers, one_core=i == 0)
        run = child("pass", paths, shas, workers=pass_workers, pool="auto")
        all_cores = max(lim["threads"], lim["processes"])
        samples.append(
            {
                "limit": lim,
                "pass": run,
                "ratio": run["img_per_s"] / all_cores,
            }
        )
        log.info(
            "pair %d: (b) %.0f img/s, pass %.0f img/s, ratio %.2f",
            i + 1,
            all_cores,
            run["img_per_s"],
            samples[-1]["ratio"],
        )
    median = {k: statistics.median(s["limit"][k] for s in samples) for k in ("threads", "processes")}
    return {
        "files": len(paths),
        "samples": samples,
        "median_ratio": statistics.median(s["ratio"] for s in samples),
        "median_pass_img_per_s": statistics.median(s["pass"]["img_per_s"] for s in samples),
        "median_limit": {"1_core": samples[0]["limit"]["1_core"], **median},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("reference", choices=["notebook", "limit", "pass"])
    parser.add_argument("listing", type=Path)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--one-core", choices=["True", "False"], default="False")
    parser.add_argument("--pool", choices=["auto", "thread", "process"], default="auto")
    args = parser.parse_args()
    rows = [line.split("\t") for line in args.listing.read_text().splitlines()]
    paths, shas = [r[0] for r in rows], [r[1] or None for r in rows]
    if args.reference == "notebook":
        result = notebook(paths)
    elif args.reference == "limit":
        result = limit(paths, args.workers, args.one_core == "True")
    else:
        result = validate_pass(paths, shas, args.workers, args.pool)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
