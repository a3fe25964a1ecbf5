"""keep_freed_memory(): after TensorFlow's generator dataset sets glibc's trim threshold (which
turns the dynamic mmap threshold off), large buffers are mmapped and page-faulted anew on every
allocation; our settings make them reuse freed heap (pipeline/training/allocator.py)."""

from __future__ import annotations

import ctypes
import platform
import resource

import pytest

from pipeline.training import allocator

GLIBC = platform.libc_ver()[0] == "glibc"
BUFFER = 4 * 1024 * 1024  # bytes: an activation of batch 16 at 64 x 64 x 16 in float32


def _faults_per_cycle(cycles: int = 20) -> float:
    """Minor page faults per malloc-touch-free of BUFFER bytes, as TF's CPU allocator does it (numpy
    would madvise huge pages, which hides the faults)."""
    libc = allocator._glibc()
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(cycles):
        buf = libc.malloc(BUFFER)
        ctypes.memset(buf, 1, BUFFER)  # touch every page
        libc.free(buf)
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start) / cycles


def test_settings_are_taken_where_glibc_is_the_c_library():
    assert allocator.keep_freed_memory() is GLIBC


@pytest.mark.skipif(not GLIBC, reason="the mallopt thresholds exist in glibc only")
def test_freed_buffers_are_reused_instead_of_faulted_again():
    libc = allocator._glibc()
    try:
        libc.mallopt(allocator.M_TRIM_THRESHOLD, 128 * 1024)  # what TF's generator dataset sets
        libc.mallopt(allocator.M_MMAP_THRESHOLD, 128 * 1024)  # glibc's default, now fixed
        tf_like = _faults_per_cycle()
    finally:
        assert allocator.keep_freed_memory()
    _faults_per_cycle(2)  # the heap grows once
    kept = _faults_per_cycle()
    pages = BUFFER / resource.getpagesize()
    assert tf_like > 0.5 * pages  # each cycle faults the buffer in again (fails if glibc changes)
    assert kept < 0.05 * pages


def test_callback_applies_at_train_begin_and_again_after_the_first_batch(monkeypatch):
    calls = []
    monkeypatch.setattr(allocator, "keep_freed_memory", lambda: calls.append(1) or True)
    callback = allocator.KeepFreedMemory()
    for _ in range(2):  # two fits (phases) with the same callback object
        callback.on_train_begin()
        for batch in range(3):
            callback.on_train_batch_end(batch)
    assert len(calls) == 4
