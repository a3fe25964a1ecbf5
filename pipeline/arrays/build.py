"""Writing <split>.npy: decode + resize every image once, in parallel, straight into the file.

`write_images` creates the .npy with np.lib.format.open_memmap (header + size), then workers
decode ranges of rows and write each range at its row offset with os.pwrite: row i of the file
is image i whatever the worker count or finishing order, so the bytes are identical for the same
inputs. Nothing is mapped while writing, so the writer's RSS stays at a few chunks however large
the array (a written memmap's dirty pages would count in RSS). Pool: forked processes where that
is safe (the main thread of a CLI run, many files: faster, as for validate's decode pass),
threads elsewhere; forked workers inherit the paths (only bounds are pickled).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from functools import partial
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from pipeline.core import images
from pipeline.core.errors import DataError

log = logging.getLogger(__name__)
IO_OVERLAP = 2  # workers per core: one decodes while another waits on a cold file read
PROCESS_MIN_FILES = 2000  # below this a process pool's start-up outweighs its gain
CHUNK_BYTES = 8 << 20  # decoded bytes per task (bounds memory per worker)
MAX_CHUNK_ROWS = 2048

# (paths, dest, header offset, image_size, channels, window)
Job = tuple[Sequence[str], str, int, int, int, images.Window]
_JOB: Job | None = None  # a forked worker's inherited job


def resolve_workers(workers: int) -> int:
    return workers if workers > 0 else IO_OVERLAP * (os.cpu_count() or 1)


def chunk_rows(n: int, row_bytes: int, workers: int) -> int:
    """Rows per task: ~8 tasks per worker for an even finish, at most CHUNK_BYTES of pixels."""
    by_bytes = max(1, CHUNK_BYTES // row_bytes)
    return max(1, min(by_bytes, MAX_CHUNK_ROWS, -(-n // (8 * workers))))


def _decode_range(bounds: tuple[int, int], job: Job | None = None) -> tuple[int, str | None]:
    """Decode rows [start, stop) and pwrite them at their offset; (rows done, error or None)."""
    paths, dest, offset, size, channels, window = job or _JOB
    start, stop = bounds
    out = np.empty((stop - start, size, size, channels), np.uint8)
    for i in range(start, stop):
        try:
            out[i - start] = images.preprocess(paths[i], size, channels, window)
        except (OSError, ValueError) as exc:  # DecodeError is a ValueError
            return i - start, f"cannot read image {paths[i]} ({exc}); re-run the validate stage"
    fd = os.open(dest, os.O_WRONLY)
    try:
        view, pos = memoryview(out).cast("B"), offset + start * out[0].nbytes
        while view:
            written = os.pwrite(fd, view, pos)
            view, pos = view[written:], pos + written
    finally:
        os.close(fd)
    return stop - start, None


def _start_worker(job: Job) -> None:
    global _JOB
    import gc

    gc.freeze()  # never walk (nor copy-on-write) the parent's heap
    _JOB = job


def pick_pool(kind: str, n: int) -> str:
    """auto: fork where it is safe and pays off (main thread, no live non-daemon thread), else threads."""
    if kind != "auto":
        return kind
    me = threading.current_thread()
    alone = me is threading.main_thread() and all(t.daemon for t in threading.enumerate() if t is not me)
    return "process" if n >= PROCESS_MIN_FILES and alone else "thread"


def _executor(kind: str, workers: int, job: Job) -> Executor:
    # The pool is the parallelism: OpenCV's own thread pool is switched off here, in the parent and
    # before any fork. A child that reconfigures a pool whose threads it did not inherit (the parent
    # had run OpenCV in threads, e.g. a smaller split first) waits forever for them.
    cv2.setNumThreads(1)
    if kind == "thread":
        return ThreadPoolExecutor(workers)
    return ProcessPoolExecutor(
        workers, mp_context=get_context("fork"), initializer=_start_worker, initargs=(job,)
    )


def write_images(
    paths: Sequence[str],
    dest: Path,
    size: int,
    channels: int,
    window: images.Window = None,
    workers: int = 0,
    kind: str = "auto",
    desc: str = "preprocess",
) -> float:
    """Decode + resize `paths` into a new uint8 (N, size, size, channels) .npy at `dest`; img/s."""
    n = len(paths)
    if n == 0:
        raise DataError(f"{desc}: the manifest has no rows; check the split/balance stages")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    header = np.lib.format.open_memmap(dest, mode="w+", dtype=np.uint8, shape=(n, size, size, channels))
    offset = header.offset
    del header  # the file now has its header and full size; rows are written with pwrite
    workers = resolve_workers(workers)
    kind = pick_pool(kind, n)
    step = chunk_rows(n, size * size * channels, workers)
    bounds = [(i, min(i + step, n)) for i in range(0, n, step)]
    job: Job = (list(map(str, paths)), str(dest), offset, size, channels, window)
    task = partial(_decode_range, job=job) if kind == "thread" else _decode_range
    start = time.perf_counter()
    with _executor(kind, workers, job) as pool, tqdm(total=n, desc=desc, unit="img", disable=None) as bar:
        for done, error in pool.map(task, bounds):
            if error:
                pool.shutdown(wait=True, cancel_futures=True)  # do not decode the rest first
                raise DataError(error)
            bar.update(done)
    seconds = time.perf_counter() - start
    rate = n / seconds if seconds > 0 else 0.0
    log.info("%s: %d images in %.1f s (%.0f img/s, %d %s workers)", desc, n, seconds, rate, workers, kind)
    return rate


def decode_all(paths: Sequence[str], size: int, channels: int, window: images.Window = None) -> np.ndarray:
    """Decode + resize `paths` into an in-memory uint8 array (small sets: a batch to predict)."""
    out = np.empty((len(paths), size, size, channels), np.uint8)

    def one(i: int) -> None:
        try:
            out[i] = images.preprocess(paths[i], size, channels, window)
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read image {paths[i]} ({exc})") from exc

    with ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 1))) as pool:
        list(pool.map(one, range(len(paths))))
    return out
