"""Prep benchmark: ingest -> regroup -> validate -> split -> balance on synthetic IDC-layout patches.

    uv run python benchmarks/prep.py --n 20000        # default n = 277,524 (the real IDC size)

Generates n 50x50 RGB PNGs once (IDC layout <patient>/<class>/<pid>_idx5_x.._y.._class<c>.png,
from pipeline.sources.sample, cached under --cache), runs the stages' run() in-process in a
scratch project (paths from dvc.yaml), and compares with two references on the same files, each
in a fresh child process so its memory is its own:
  (a) the IDC notebook's loader: cv2.imread per file into a list, np.array, float32 / 255
      (on at most --ref-limit files; RAM/image is extrapolated to n and labelled so);
  (b) the decode limit: cv2.imdecode of bytes already in memory, 1 core and all cores.
Peak RSS per stage is VmHWM, reset before each stage via /proc/self/clear_refs (no tracemalloc).
Prints a table and writes JSON to benchmarks/out/prep.json. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import resource
import shlex
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
STAGES = ("ingest", "regroup", "validate", "split", "balance")
GOALS = {"decode_vs_limit": 0.70, "prep_vs_notebook": 0.5, "peak_rss_mb": 1536}


def peak_rss_mb(reset: bool = False) -> float:
    """This process's peak RSS since the last reset (VmHWM), in MiB; optionally reset it."""
    peak = int(re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) / 1024
    if reset:
        Path("/proc/self/clear_refs").write_text("5")
    return peak


def ensure_dataset(n: int, cache: Path) -> Path:
    """n IDC-layout PNGs under cache/n<n>/ (generated once, reused while .complete exists)."""
    from pipeline.config import SampleConfig
    from pipeline.sources import sample

    root = cache / f"n{n}"
    if (root / ".complete").is_file():
        return root
    shutil.rmtree(root, ignore_errors=True)
    patients = max(2, round(n / 995))  # IDC: 277,524 patches of 279 patients
    cfg = SampleConfig(patients=patients, patches_per_patient=-(-n * 4 // (3 * patients)) + 1, seed=11)
    start, written = time.perf_counter(), 0
    for patch, png in sample.generate(cfg):
        path = root / patch.relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
        written += 1
        if written == n:
            break
    (root / ".complete").write_text(str(written))
    logging.info("generated %d PNGs in %.0f s under %s", written, time.perf_counter() - start, root)
    return root


def stage_io(name: str) -> tuple[dict[str, Path], dict[str, Path]]:
    """The -i/-o key=path pairs of a stage's cmd in dvc.yaml (the one place paths are declared)."""
    words = shlex.split(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"][name]["cmd"])
    pairs: dict[str, dict[str, Path]] = {"-i": {}, "-o": {}}
    for flag, value in zip(words, words[1:], strict=False):
        if flag in pairs:
            key, _, path = value.partition("=")
            pairs[flag][key] = Path(path)
    return pairs["-i"], pairs["-o"]


def wait_for_stages(timeout: float) -> None:
    """The stages are written concurrently by others: wait until every module exists."""
    from importlib.util import find_spec

    deadline = time.monotonic() + timeout
    while missing := [s for s in STAGES if find_spec(f"pipeline.stages.{s}") is None]:
        if time.monotonic() > deadline:
            sys.exit(f"prep benchmark: pipeline/stages/{missing[0]}.py does not exist yet")
        logging.info("waiting for pipeline.stages.%s", ", ".join(missing))
        time.sleep(30)


def run_stages(source: Path, work: Path, n: int) -> list[dict]:
    from importlib import import_module

    from pipeline import config

    cfg = config.from_dict({"data": {"source": str(source), "format": "idc"}})
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    os.chdir(work)
    rows = []
    for name in STAGES:
        module = import_module(f"pipeline.stages.{name}")
        inputs, outputs = stage_io(name)
        peak_rss_mb(reset=True)
        start = time.perf_counter()
        summary = module.run(cfg, inputs, outputs)
        seconds = time.perf_counter() - start
        rows.append(
            {"step": name, "seconds": seconds, "img_per_s": n / seconds, "peak_rss_mb": peak_rss_mb()}
        )
        logging.info("%s: %.1f s %s", name, seconds, json.dumps(summary, default=str)[:200])
    return rows


def _decode_range(bounds: tuple[int, int]) -> int:
    return sum(
        cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_UNCHANGED) is not None
        for b in _BLOBS[slice(*bounds)]
    )


_BLOBS: list[bytes] = []


def reference(kind: str, paths: list[str], workers: int) -> dict:
    """Run one reference on paths in this (child) process; returns its figures."""
    base = peak_rss_mb(reset=True)
    start = time.perf_counter()
    if kind == "notebook":
        images = [cv2.imread(p) for p in paths]
        x = np.array(images).astype(np.float32) / 255.0
        seconds = time.perf_counter() - start
        peak = peak_rss_mb()
        assert x.shape[0] == len(paths)
        return {
            "img_per_s": len(paths) / seconds,
            "peak_rss_mb": peak,
            "rss_mb_per_image": (peak - base) / len(paths),
        }
    _BLOBS.extend(Path(p).read_bytes() for p in paths)
    bounds = [(i, min(i + 512, len(paths))) for i in range(0, len(paths), 512)]
    out = {}
    for label, run in (
        ("1_core", lambda: sum(map(_decode_range, bounds))),
        ("threads", lambda: sum(ThreadPoolExecutor(workers).map(_decode_range, bounds))),
        ("processes", lambda: sum(get_context("fork").Pool(workers).map(_decode_range, bounds))),
    ):
        start = time.perf_counter()
        assert run() == len(paths)
        out[label] = len(paths) / (time.perf_counter() - start)
    return out


def child(kind: str, paths: list[str], workers: int) -> dict:
    listing = Path(f"/tmp/medpipe-bench-{os.getpid()}-{kind}.txt")
    listing.write_text("\n".join(paths))
    cmd = [sys.executable, __file__, "--reference", kind, "--paths", str(listing), "--workers", str(workers)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    listing.unlink()
    return json.loads(out.strip().splitlines()[-1])


def compare_decode_kinds(paths: list[str], workers: int) -> dict:
    from pipeline.validation.decode import Limits, decode_pass

    limits = Limits(8, 8192, 100_000_000)
    return {
        kind: decode_pass(paths, [None] * len(paths), limits, workers, kind)[1]
        for kind in ("thread", "process")
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=277_524)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/medpipe-bench-idc"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/medpipe-bench-work"))
    parser.add_argument("--ref-limit", type=int, default=50_000, help="files used by references (a) and (b)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/out/prep.json")
    parser.add_argument("--wait", type=float, default=1800, help="seconds to wait for missing stages")
    parser.add_argument("--reference", help=argparse.SUPPRESS)
    parser.add_argument("--paths", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reference:
        print(json.dumps(reference(args.reference, args.paths.read_text().splitlines(), args.workers)))
        return
    args.out, args.cache, args.work = (
        args.out.resolve(),
        args.cache.resolve(),
        args.work.resolve(),
    )  # we chdir
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    load_before = os.getloadavg()
    source = ensure_dataset(args.n, args.cache)
    wait_for_stages(args.wait)
    stages = run_stages(source, args.work, args.n)
    validated = (args.work / stage_io("validate")[1]["validated"]).read_text().splitlines()[1:]
    subset = [str(args.work / line.split(",")[0]) for line in validated[: args.ref_limit]]
    kinds = compare_decode_kinds(subset, args.workers)
    notebook = child("notebook", subset, args.workers)
    limit = child("decode", subset, args.workers)
    summary = json.loads((args.work / stage_io("validate")[1]["summary"]).read_text())
    prep_seconds = sum(r["seconds"] for r in stages)
    all_cores = max(limit["threads"], limit["processes"])
    result = {
        "n": args.n,
        "ref_files": len(subset),
        "cpu_count": os.cpu_count(),
        "loadavg_before_after": [load_before, os.getloadavg()],
        "stages": stages,
        "prep": {"seconds": prep_seconds, "img_per_s": args.n / prep_seconds},
        "validate_decode_img_per_s": summary["decode_img_per_s"],
        "decode_pass_by_pool": kinds,
        "notebook_loader": {
            **notebook,
            "extrapolated_rss_gb_at_n": notebook["rss_mb_per_image"] * args.n / 1024,
        },
        "decode_limit": limit,
        # clear_refs resets ru_maxrss too: the run's peak is the largest per-stage peak
        "peak_rss_mb": max(
            [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024] + [r["peak_rss_mb"] for r in stages]
        ),
        "ratios": {
            "decode_vs_limit": summary["decode_img_per_s"] / all_cores,
            "prep_vs_notebook": (args.n / prep_seconds) / notebook["img_per_s"],
        },
        "goals": GOALS,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)


def print_table(r: dict) -> None:
    print(f"\nprep benchmark, n={r['n']} ({r['cpu_count']} cores, load {r['loadavg_before_after']})")
    print(f"{'step':<34}{'seconds':>9}{'img/s':>10}{'peak RSS MB':>13}")
    for s in r["stages"]:
        print(f"{s['step']:<34}{s['seconds']:>9.1f}{s['img_per_s']:>10.0f}{s['peak_rss_mb']:>13.0f}")
    print(
        f"{'prep total (5 stages)':<34}{r['prep']['seconds']:>9.1f}{r['prep']['img_per_s']:>10.0f}{r['peak_rss_mb']:>13.0f}"
    )
    nb, lim = r["notebook_loader"], r["decode_limit"]
    print(
        f"{'(a) notebook loader, ' + str(r['ref_files']) + ' files':<34}{'':>9}{nb['img_per_s']:>10.0f}{nb['peak_rss_mb']:>13.0f}"
    )
    print(
        f"    RAM/image {nb['rss_mb_per_image'] * 1024:.1f} KiB -> EXTRAPOLATED to n: {nb['extrapolated_rss_gb_at_n']:.2f} GB"
    )
    for key in ("1_core", "threads", "processes"):
        print(f"{'(b) imdecode in memory, ' + key:<34}{'':>9}{lim[key]:>10.0f}")
    for kind, rate in r["decode_pass_by_pool"].items():
        print(f"{'validate decode pass, ' + kind + ' pool':<34}{'':>9}{rate:>10.0f}")
    ratios, goals = r["ratios"], r["goals"]
    print(
        f"validate decode / (b) all cores = {ratios['decode_vs_limit']:.2f} (goal >= {goals['decode_vs_limit']})"
    )
    print(f"prep / (a) notebook = {ratios['prep_vs_notebook']:.2f} (goal >= {goals['prep_vs_notebook']})")
    print(f"peak RSS = {r['peak_rss_mb']:.0f} MB (goal <= {goals['peak_rss_mb']})")


if __name__ == "__main__":
    main()
