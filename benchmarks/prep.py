"""Prep benchmark: ingest -> regroup -> validate -> split -> balance on synthetic IDC-layout patches.

    uv run python benchmarks/prep.py --n 20000        # default n = 277,524 (the real IDC size)

Generates n 50x50 RGB PNGs once (IDC layout <patient>/<class>/<pid>_idx5_x.._y.._class<c>.png,
from pipeline.sources.sample, cached under --cache), runs the stages' run() in-process in a
scratch project (paths from dvc.yaml), then compares with two references (benchmarks/prep_refs.py),
each in a fresh child process so its memory is its own:
  (a) the IDC notebook's loader: cv2.imread per file into a list, np.array, float32 / 255
      (on the first --ref-limit files only: it needs ~66 KiB/image; RAM/image is extrapolated to n);
  (b) the decode limit: cv2.imdecode of bytes already in memory, 1 core and all cores, on ALL n
      files, alternated with the stage's decode pass on the same files (b, pass, b, pass, ...;
      --pairs times, os.sync() and a settle before each); the goal ratio is the median of the
      per-pair ratios. The stage's own in-pipeline decode rate (right after ingest wrote n files)
      is reported beside it as the realistic figure.
Peak RSS per stage is VmHWM, reset before each stage via /proc/self/clear_refs (no tracemalloc).
Prints a table and writes JSON to benchmarks/out/prep.json. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shlex
import shutil
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.prep_refs import child, compare_pass_to_limit, peak_rss_mb  # noqa: E402

STAGES = ("ingest", "regroup", "validate", "split", "balance")
GOALS = {"decode_vs_limit": 0.70, "prep_vs_notebook": 0.5, "peak_rss_mb": 1536}


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=277_524)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/medpipe-bench-idc"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/medpipe-bench-work"))
    parser.add_argument("--ref-limit", type=int, default=50_000, help="files used by reference (a)")
    parser.add_argument("--pairs", type=int, default=3, help="(b)/decode-pass pairs, alternated")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="(b)'s workers")
    parser.add_argument("--pass-workers", type=int, default=0, help="the pass's; 0 = the stage default")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/out/prep.json")
    parser.add_argument("--wait", type=float, default=1800, help="seconds to wait for missing stages")
    args = parser.parse_args()
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
    # the pipeline's peak, taken before this script builds its own n-file lists for the references
    # (clear_refs resets ru_maxrss too, so the run's peak is also the largest per-stage peak)
    prep_peak_mb = max(
        [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024] + [r["peak_rss_mb"] for r in stages]
    )
    validated = [
        line.split(",")
        for line in (args.work / stage_io("validate")[1]["validated"]).read_text().splitlines()
    ]
    path_col, sha_col = validated[0].index("path"), validated[0].index("sha256")
    paths = [str(args.work / row[path_col]) for row in validated[1:]]
    shas = [row[sha_col] for row in validated[1:]]
    compared = compare_pass_to_limit(paths, shas, args.workers, args.pairs, args.pass_workers)
    thread_pass = child("pass", paths, shas, workers=args.pass_workers, pool="thread")
    notebook = child("notebook", paths[: args.ref_limit])
    summary = json.loads((args.work / stage_io("validate")[1]["summary"]).read_text())
    prep_seconds = sum(r["seconds"] for r in stages)
    limit = compared["median_limit"]
    result = {
        "n": args.n,
        "ref_files": min(args.ref_limit, len(paths)),  # (a) only; (b) and the pass use all n
        "cpu_count": os.cpu_count(),
        "loadavg_before_after": [load_before, os.getloadavg()],
        "stages": stages,
        "prep": {"seconds": prep_seconds, "img_per_s": args.n / prep_seconds},
        # the stage's own rate inside the pipeline run, straight after ingest wrote the files
        "validate_decode_img_per_s": summary["decode_img_per_s"],
        "decode_pass_by_pool": {
            "thread": thread_pass["img_per_s"],
            "process": compared["median_pass_img_per_s"],
        },
        "decode_vs_limit": compared,  # (b)/pass pairs on all n files: every sample and the median ratio
        "notebook_loader": {
            **notebook,
            "extrapolated_rss_gb_at_n": notebook["rss_mb_per_image"] * args.n / 1024,
        },
        "decode_limit": limit,  # medians over the pairs (1_core: first pair only)
        "peak_rss_mb": prep_peak_mb,
        "ratios": {
            "decode_vs_limit": compared["median_ratio"],
            "decode_in_pipeline_vs_limit": summary["decode_img_per_s"]
            / max(limit["threads"], limit["processes"]),
            "prep_vs_notebook": (args.n / prep_seconds) / notebook["img_per_s"],
        },
        "goals": GOALS,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)


def print_table(r: dict) -> None:
    load = [[round(x, 2) for x in pair] for pair in r["loadavg_before_after"]]
    print(f"\nprep benchmark, n={r['n']} ({r['cpu_count']} cores, loadavg before/after {load})")
    print(f"{'step':<40}{'seconds':>9}{'img/s':>10}{'peak RSS MB':>13}")
    for s in r["stages"]:
        print(f"{s['step']:<40}{s['seconds']:>9.1f}{s['img_per_s']:>10.0f}{s['peak_rss_mb']:>13.0f}")
    prep = r["prep"]
    print(
        f"{'prep total (5 stages)':<40}{prep['seconds']:>9.1f}{prep['img_per_s']:>10.0f}{r['peak_rss_mb']:>13.0f}"
    )
    nb, lim, cmp = r["notebook_loader"], r["decode_limit"], r["decode_vs_limit"]
    print(
        f"{'(a) notebook loader, ' + str(r['ref_files']) + ' files':<40}{'':>9}{nb['img_per_s']:>10.0f}{nb['peak_rss_mb']:>13.0f}"
    )
    print(
        f"    RAM/image {nb['rss_mb_per_image'] * 1024:.1f} KiB -> EXTRAPOLATED to n: {nb['extrapolated_rss_gb_at_n']:.2f} GB"
    )
    for key in ("1_core", "threads", "processes"):
        print(f"{'(b) imdecode in memory, ' + key + ' (median)':<40}{'':>9}{lim[key]:>10.0f}")
    for kind, rate in r["decode_pass_by_pool"].items():
        print(f"{'validate decode pass, ' + kind + ' pool':<40}{'':>9}{rate:>10.0f}")
    print(f"{'validate decode, in the pipeline run':<40}{'':>9}{r['validate_decode_img_per_s']:>10.0f}")
    print(f"(b) vs decode pass on the same {cmp['files']} files, alternated (img/s; load1 before each):")
    for i, s in enumerate(cmp["samples"], 1):
        b = max(s["limit"]["threads"], s["limit"]["processes"])
        print(
            f"  pair {i}: (b) {b:>7.0f} (threads {s['limit']['threads']:.0f}, processes {s['limit']['processes']:.0f};"
            f" load {s['limit']['load1_before']:.2f})  pass {s['pass']['img_per_s']:>7.0f} (load"
            f" {s['pass']['load1_before']:.2f})  ratio {s['ratio']:.2f}"
        )
    ratios, goals = r["ratios"], r["goals"]
    print(
        f"decode pass / (b) all cores, median of pairs = {ratios['decode_vs_limit']:.2f} (goal >= {goals['decode_vs_limit']})"
    )
    print(
        f"  in-pipeline decode / median (b) = {ratios['decode_in_pipeline_vs_limit']:.2f} (realistic, not the goal figure)"
    )
    print(f"prep / (a) notebook = {ratios['prep_vs_notebook']:.2f} (goal >= {goals['prep_vs_notebook']})")
    print(f"peak RSS = {r['peak_rss_mb']:.0f} MB (goal <= {goals['peak_rss_mb']})")


if __name__ == "__main__":
    main()
