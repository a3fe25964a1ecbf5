"""The decode pass: every image read and decoded once with OpenCV, in parallel, chunked.

`decode_pass` returns the checks as columns (`FileCheck._fields` -> list, input order), not one
object per file: on 2 cores the parent's CPU is taken from the workers, so it should do little.
Pool: cv2.imdecode, file reads and hashlib release the GIL, yet forked processes beat threads
(benchmarks/prep.py reports both as decode_pass_by_pool; figures in benchmarks/results/figures.md);
`pick_pool` uses them where forking is safe and falls back to threads elsewhere. Forked workers
inherit the file list (nothing is pickled to them but (start, stop) bounds) and freeze the
inherited heap out of gc.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from functools import partial
from multiprocessing import get_context
from typing import Literal

import cv2
from tqdm import tqdm

from pipeline.validation.checks import FileCheck, Limits, check_file

__all__ = ["FileCheck", "Limits", "check_file", "decode_pass", "pick_pool", "resolve_workers"]
log = logging.getLogger(__name__)
PROCESS_MIN_FILES = 2000  # below this a process pool's start-up outweighs its gain
CHUNKS_PER_WORKER = 16  # enough for an even finish; fewer round trips than fixed 256-file chunks
MIN_CHUNK, MAX_CHUNK = 64, 4096

Job = tuple[Sequence[str], Sequence[str | None], Limits]
Columns = dict[str, list]
_JOB: Job | None = None  # a forked worker's copy of the caller's job (set by _start_worker)


def chunk_size(n_files: int, workers: int) -> int:
    """Files per task: about CHUNKS_PER_WORKER tasks per worker, within [MIN_CHUNK, MAX_CHUNK]."""
    return max(MIN_CHUNK, min(MAX_CHUNK, -(-n_files // (workers * CHUNKS_PER_WORKER))))


def _check_range(bounds: tuple[int, int], job: Job | None = None) -> tuple[tuple, ...]:
    """Checks of files[start:stop] as columns (one tuple per FileCheck field): cheap to pickle."""
    paths, shas, limits = job or _JOB
    return tuple(zip(*(check_file(paths[i], shas[i], limits) for i in range(*bounds)), strict=True))


def _quiet_opencv() -> int:
    """Corrupt files are expected here: silence OpenCV's own log; returns the previous level."""
    return cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def _start_worker(job: Job) -> None:
    """Forked worker set-up: keep the inherited job, keep gc off the inherited heap, quiet OpenCV."""
    global _JOB
    gc.freeze()  # collections in the worker never walk (nor copy-on-write) the parent's objects
    _JOB = job
    _quiet_opencv()


IO_OVERLAP = 2  # workers per core: while one waits on a file read, another decodes


def resolve_workers(workers: int) -> int:
    """0 = IO_OVERLAP workers per core. Reads block when the page cache is cold: more workers than
    cores keep the cores decoding while others wait on a read, and cost nothing when the cache is
    warm (benchmarks/prep.py; figures in benchmarks/results/figures.md)."""
    return workers if workers > 0 else IO_OVERLAP * (os.cpu_count() or 1)


def _executor(kind: str, workers: int, job: Job) -> Executor:
    if kind == "thread":
        return ThreadPoolExecutor(workers)
    # fork: initargs reach the workers by inheritance, not pickling
    return ProcessPoolExecutor(
        workers, mp_context=get_context("fork"), initializer=_start_worker, initargs=(job,)
    )


def pick_pool(kind: str, n_files: int) -> str:
    """auto: fork processes where it is safe and pays off (many files, no other live non-daemon
    thread: a CLI run, not a Prefect worker thread), else threads.

    Processes are faster and steadier than threads (benchmarks/results/figures.md). forkserver/spawn
    would re-import an unguarded __main__ script (BrokenProcessPool); forking beside working threads
    can deadlock. Daemon helpers (tqdm's monitor) are tolerated.
    """
    if kind != "auto":
        return kind
    me = threading.current_thread()
    alone = all(t.daemon for t in threading.enumerate() if t is not me) and me is threading.main_thread()
    return "process" if n_files >= PROCESS_MIN_FILES and alone else "thread"


def decode_pass(
    paths: Sequence[str],
    expected_sha256: Sequence[str | None],
    limits: Limits,
    workers: int = 0,
    kind: Literal["auto", "thread", "process"] = "auto",
) -> tuple[Columns, float]:
    """Check every file once in parallel; returns the checks as columns (input order) and images/s."""
    if len(paths) != len(expected_sha256):
        raise ValueError(f"{len(paths)} paths but {len(expected_sha256)} expected sha256 values")
    previous_level = _quiet_opencv()
    n = len(paths)
    workers = resolve_workers(workers)
    kind = pick_pool(kind, n)
    size = chunk_size(n, workers)
    bounds = [(i, min(i + size, n)) for i in range(0, n, size)]
    job: Job = (paths, expected_sha256, limits)
    columns: Columns = {field: [] for field in FileCheck._fields}
    task = partial(_check_range, job=job) if kind == "thread" else _check_range
    start = time.perf_counter()
    try:
        with (
            _executor(kind, workers, job) as pool,
            tqdm(total=n, desc="validate: decode", unit="img", disable=None) as bar,
        ):
            for part in pool.map(task, bounds):
                for column, values in zip(columns.values(), part, strict=True):
                    column.extend(values)
                bar.update(len(part[0]))
    finally:
        cv2.utils.logging.setLogLevel(previous_level)
    elapsed = time.perf_counter() - start
    rate = n / elapsed if elapsed > 0 else 0.0
    log.info("decoded %d files in %.1f s (%.0f img/s, %d %s workers)", n, elapsed, rate, workers, kind)
    return columns, rate
