"""One file's checks: read, hash, sniff the header, guard the size, decode once, check the shape.

`check_file` returns a `FileCheck` (reason, detail, height, width, channels, dtype, sha256, warning,
and for >8-bit images low/high/significant_bits); `reason` is "" for a good image, else one of
`pipeline.validation.reasons.REASONS` (the first problem found). A file that decodes is never
quarantined for bytes after its end marker: that is a `warning`. It runs once per file in the decode pass, so its overhead beside
`cv2.imdecode` is kept small: one open/fstat/read, one dtype-name lookup.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

from pipeline.core import dicom, dicom_pixels
from pipeline.core.images import DecodeError, decode_raw
from pipeline.validation import headers
from pipeline.validation import reasons as R

# dtype.name is built in Python on every call; a dict lookup is far cheaper on this per-file path.
_DTYPE_NAMES = {np.dtype(name): name for name in ("uint8", "uint16", "int16", "float32", "float64")}


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
    warning: str = ""  # kept despite it: trailing bytes, EXIF orientation applied
    low: int | None = None  # >8-bit images: smallest and largest sample, PNG sBIT (intensity window)
    high: int | None = None
    significant_bits: int | None = None


def _size_problem(width: int, height: int, limits: Limits) -> str | None:
    if width * height > limits.max_pixels:
        return f"{width}x{height} = {width * height} pixels > max_pixels {limits.max_pixels}"
    if max(width, height) > limits.max_side:
        return f"{width}x{height}: a side > max_side {limits.max_side}"
    return None


READ_CAP = 0x7FFFF000  # Linux: one read() returns at most this (2 GiB - 4 KiB), whatever is asked
HASH_CHUNK = 1 << 30


def read_file(path: str) -> bytes:
    """All bytes of path with one open, fstat and read (open() adds a buffered reader); OSError as open().
    Files over READ_CAP (> 2 GiB) take more reads: a short read below the cap is the end of the file."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        data = os.read(fd, size + 1)  # +1 sees a file that grew since fstat
        if len(data) <= size and len(data) < READ_CAP:
            return data
        parts = [data]
        while part := os.read(fd, min(READ_CAP, 1 << 30)):
            parts.append(part)
        return b"".join(parts)
    finally:
        os.close(fd)


def sha256_hex(data: bytes) -> str:
    """sha256 of data, fed in chunks of HASH_CHUNK (files over 2 GiB included)."""
    if len(data) <= HASH_CHUNK:
        return hashlib.sha256(data).hexdigest()
    digest, view = hashlib.sha256(), memoryview(data)
    for start in range(0, len(data), HASH_CHUNK):
        digest.update(view[start : start + HASH_CHUNK])
    return digest.hexdigest()


def _warnings(data: bytes, fmt: str | None, end: int) -> str:
    notes = []
    if end < len(data):
        marker = {"png": "the IEND chunk", "jpeg": "the FFD9 end marker"}.get(fmt or "", "the image")
        notes.append(f"{len(data) - end} bytes after {marker}")
    if fmt == "jpeg" and (orientation := headers.exif_orientation(data)) not in (None, 1):
        notes.append(f"EXIF orientation {orientation} applied")
    return "; ".join(notes)


def _dicom_dimensions(data: bytes) -> tuple[int, int] | None:
    """(columns, rows x frames) a DICOM header declares: the decompression-bomb guard before decoding."""
    try:
        head = dicom.read_header(data)
    except Exception:  # noqa: BLE001 - an unreadable header is the decoder's to report
        return None
    if not head["rows"] or not head["columns"]:
        return None
    return head["columns"], head["rows"] * head["frames"]


def check_file(path: str, expected_sha256: str | None, limits: Limits) -> FileCheck:
    """Read, hash, sniff and decode one file; the first problem found is its reason."""
    try:
        data = read_file(path)
    except OSError as exc:
        return FileCheck(R.UNREADABLE, f"{exc.strerror or type(exc).__name__}: {path}")
    if not data:
        return FileCheck(R.ZERO_BYTE, "0 bytes")
    sha = sha256_hex(data)
    if expected_sha256 and sha != expected_sha256:
        return FileCheck(R.SHA256_MISMATCH, f"manifest {expected_sha256[:12]}, file {sha[:12]}", sha256=sha)
    fmt = headers.sniff(data)
    dims = _dicom_dimensions(data) if fmt == "dicom" else headers.dimensions(data, fmt)
    if dims and (problem := _size_problem(*dims, limits)):
        return FileCheck(R.TOO_LARGE, f"header declares {problem}", sha256=sha)
    end = headers.image_end(data, fmt)
    if end is None:
        marker = "IEND chunk" if fmt == "png" else "FFD9 end marker"
        return FileCheck(R.TRUNCATED, f"{fmt} without its {marker} ({len(data)} bytes)", sha256=sha)
    bits = None
    try:
        if fmt == "dicom":
            img, bits, _ = dicom_pixels.to_pipeline(data)
        else:
            img = decode_raw(data)
    except DecodeError as exc:
        if fmt == "dicom":
            return FileCheck(R.UNDECODABLE, str(exc), sha256=sha)
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
    dtype = _DTYPE_NAMES.get(img.dtype) or img.dtype.name
    found = FileCheck("", "", height, width, channels, dtype, sha, _warnings(data, fmt, end))
    if dtype in ("uint16", "float32"):  # for the dataset-level intensity window (intensity.json)
        samples = img[:, :, :3] if channels == 4 else img  # alpha is no intensity
        low, high = cv2.minMaxLoc(np.ascontiguousarray(samples).reshape(height, -1))[:2]
        bits = headers.png_significant_bits(data) if fmt == "png" else bits  # DICOM: BitsStored
        found = found._replace(low=math.floor(low), high=math.ceil(high), significant_bits=bits)
    if problem := _size_problem(width, height, limits):
        return found._replace(reason=R.TOO_LARGE, detail=problem)
    if min(height, width) < limits.min_side:
        return found._replace(reason=R.TOO_SMALL, detail=f"{width}x{height} < min_side {limits.min_side}")
    if channels not in R.VALID_CHANNELS:
        return found._replace(reason=R.UNEXPECTED_CHANNELS, detail=f"{channels} channels")
    if dtype not in (R.VALID_DTYPES if fmt == "dicom" else R.IMAGE_DTYPES):
        return found._replace(reason=R.UNSUPPORTED_DTYPE, detail=dtype)
    return found
