"""The decode pass: every image read and decoded once with OpenCV, in parallel, chunked.

Each file yields one `FileCheck` tuple: (reason, detail, height, width, channels, dtype, sha256).
`reason` is "" for a good image, else one of `pipeline.validation.reasons.REASONS`.
Pool: cv2.imdecode, file reads and hashlib release the GIL, yet forked processes beat threads on
2 shared cores (benchmarks/prep.py reports both as decode_pass_by_pool); `pick_pool` uses them
where forking is safe and falls back to threads elsewhere.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Literal, NamedTuple

import cv2
from tqdm import tqdm

from pipeline.images import DecodeError, decode_raw
from pipeline.validation import headers
from pipeline.validation import reasons as R

log = logging.getLogger(__name__)
CHUNK = 256
PROCESS_MIN_FILES = 2000  # below this a process pool's start-up (0.05-0.3 s) outweighs its gain


@dataclass(frozen=True)
class Limits:
    min_side: int
    max_side: int
    max_pixels: int


class FileCheck(NamedTuple):
    reason: str
    detail: str
    height: int | None = None
    width: int | None = None
    channels: int | None = None
    dtype: str | None = None
    sha256: str | None = None


def _size_problem(width: int, height: int, limits: Limits) -> str | None:
    if width * height > limits.max_pixels:
        return f"{width}x{height} = {width * height} pixels > max_pixels {limits.max_pixels}"
    if max(width, height) > limits.max_side:
        return f"{width}x{height}: a side > max_side {limits.max_side}"
    return None


def check_file(path: str, expected_sha256: str | None, limits: Limits) -> FileCheck:
    """Read, hash, sniff and decode one file; the first problem found is its reason."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        return FileCheck(R.UNREADABLE, f"{exc.strerror or type(exc).__name__}: {path}")
    if not data:
        return FileCheck(R.ZERO_BYTE, "0 bytes")
    sha = hashlib.sha256(data).hexdigest()
    if expected_sha256 and sha != expected_sha256:
        return FileCheck(R.SHA256_MISMATCH, f"manifest {expected_sha256[:12]}, file {sha[:12]}", sha256=sha)
    fmt = headers.sniff(data)
    dims = headers.dimensions(data, fmt)
    if dims and (problem := _size_problem(*dims, limits)):
        return FileCheck(R.TOO_LARGE, f"header declares {problem}", sha256=sha)
    if headers.is_truncated(data, fmt):
        end = "IEND chunk" if fmt == "png" else "FFD9 end marker"
        return FileCheck(R.TRUNCATED, f"{fmt} without its {end} ({len(data)} bytes)", sha256=sha)
    try:
        img = decode_raw(data)
    except DecodeError:
        if fmt is None:
            return FileCheck(R.NOT_AN_IMAGE, f"no image signature (starts {data[:8]!r})", sha256=sha)
        return FileCheck(R.UNDECODABLE, f"{fmt} signature but OpenCV cannot decode it", sha256=sha)
    except cv2.error as exc:
        if "CV_IO_MAX_IMAGE_PIXELS" in str(exc):
            return FileCheck(R.TOO_LARGE, "OpenCV refused: over OPENCV_IO_MAX_IMAGE_PIXELS", sha256=sha)
        return FileCheck(R.UNDECODABLE, f"{fmt or 'unknown format'}: OpenCV error", sha256=sha)
    height, width = img.shape[:2]
    channels = 1 if img.ndim == 2 else img.shape[2]
    if fmt == "png" and headers.png_channels(data) == 2:
        channels = 2  # gray + alpha: OpenCV expands it to 4, the source has 2
    found = FileCheck("", "", height, width, channels, img.dtype.name, sha)
    if problem := _size_problem(width, height, limits):
        return found._replace(reason=R.TOO_LARGE, detail=problem)
    if min(height, width) < limits.min_side:
        return found._replace(reason=R.TOO_SMALL, detail=f"{width}x{height} < min_side {limits.min_side}")
    if channels not in R.VALID_CHANNELS:
        return found._replace(reason=R.UNEXPECTED_CHANNELS, detail=f"{channels} channels")
    if img.dtype.name not in R.VALID_DTYPES:
        return found._replace(reason=R.UNSUPPORTED_DTYPE, detail=img.dtype.name)
    return found


def _check_chunk(chunk: list[tuple[str, str | None]], limits: Limits) -> list[FileCheck]:
    return [check_file(path, sha, limits) for path, sha in chunk]


def _quiet_opencv() -> int:
    """Corrupt files are expected here: silence OpenCV's own log; returns the previous level."""
    return cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def resolve_workers(workers: int) -> int:
    return workers if workers > 0 else (os.cpu_count() or 1)


def _executor(kind: str, workers: int) -> Executor:
    if kind == "thread":
        return ThreadPoolExecutor(workers)
    return ProcessPoolExecutor(workers, mp_context=get_context("fork"), initializer=_quiet_opencv)


def pick_pool(kind: str, n_files: int) -> str:
    """auto: fork processes where it is safe and pays off (many files, no other live non-daemon
    thread: a CLI run, not a Prefect worker thread), else threads.

    Processes were faster and steadier (18-20k vs 8-17k img/s on 2 busy cores). forkserver/spawn
    would re-import an unguarded __main__ script (BrokenProcessPool, seen with a benchmark script);
    forking beside working threads can deadlock. Daemon helpers (tqdm's monitor) are tolerated.
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
) -> tuple[list[FileCheck], float]:
    """Check every file once in parallel; returns the checks (input order) and images/s."""
    previous_level = _quiet_opencv()
    items = list(zip(paths, expected_sha256, strict=True))
    chunks = [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]
    workers = resolve_workers(workers)
    kind = pick_pool(kind, len(items))
    results: list[FileCheck] = []
    start = time.perf_counter()
    try:
        with (
            _executor(kind, workers) as pool,
            tqdm(total=len(items), desc="validate: decode", unit="img", disable=None) as bar,
        ):
            for checks in pool.map(_check_chunk, chunks, [limits] * len(chunks)):
                results.extend(checks)
                bar.update(len(checks))
    finally:
        cv2.utils.logging.setLogLevel(previous_level)
    elapsed = time.perf_counter() - start
    rate = len(items) / elapsed if elapsed > 0 else 0.0
    log.info(
        "decoded %d files in %.1f s (%.0f img/s, %d %s workers)", len(items), elapsed, rate, workers, kind
    )
    return results, rate
