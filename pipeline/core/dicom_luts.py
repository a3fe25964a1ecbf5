"""The grey-scale value transforms of PS3.3 C.11 / PS3.4 N.2, vectorised (float32 where needed).

modality(): Modality LUT Sequence, else RescaleSlope/Intercept, else identity; returns the values
and the output range [lo, hi] of every storable value (from BitsStored and PixelRepresentation).
voi_transform(): VOI LUT Sequence (preferred, as pydicom does), else WindowCenter/Width with
VOILUTFunction LINEAR / LINEAR_EXACT / SIGMOID (first window when several); None when absent.
The window output range is pydicom's: [lo, hi] of the stored values mapped by the rescale (or
[0, 2^d - 1] of a modality LUT), so the result can be compared with pydicom's own value for value.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pydicom

from pipeline.core.errors import DecodeError

Range = tuple[np.ndarray, float, float]


def _lut(item: pydicom.Dataset, ds: pydicom.Dataset) -> tuple[np.ndarray, int, int]:
    """(entries, first mapped value, bits per entry) of a LUT item (US or OW data)."""
    n, first, depth = (int(v) for v in item.LUTDescriptor)
    n = n or 65536
    raw = item.LUTData
    if isinstance(raw, bytes | bytearray):
        little = getattr(getattr(ds, "file_meta", None), "_tsyntax_encoding", (None, True))[1]
        data: Any = struct.unpack(f"{'><'[little is not False]}{n}H", raw[: 2 * n])
    else:
        data = raw if isinstance(raw, list | tuple) else [raw]
    return np.asarray(data, np.uint16 if depth > 8 else np.uint8), first, depth


def _apply_lut(arr: np.ndarray, lut: np.ndarray, first: int) -> np.ndarray:
    index = np.clip(arr.astype(np.int64) - first, 0, len(lut) - 1)
    return lut[index]


def stored_range(ds: pydicom.Dataset, bits: int) -> tuple[int, int]:
    if int(ds.get("PixelRepresentation", 0) or 0) == 1:
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def modality(arr: np.ndarray, ds: pydicom.Dataset, bits: int) -> Range:
    """Modality LUT / rescale; the values and their output range."""
    seq = ds.get("ModalityLUTSequence")
    if seq:
        lut, first, depth = _lut(seq[0], ds)
        return _apply_lut(arr, lut, first), 0.0, float(2**depth - 1)
    lo, hi = stored_range(ds, bits)
    slope, intercept = ds.get("RescaleSlope"), ds.get("RescaleIntercept")
    if slope is None or intercept is None:
        return arr, float(lo), float(hi)
    slope, intercept = float(slope), float(intercept)
    if slope == 1 and intercept == 0:
        return arr, float(lo), float(hi)
    if slope == 1 and intercept.is_integer() and arr.dtype.kind in "ui":
        values = arr.astype(np.int32) + np.int32(intercept)
    else:
        values = arr.astype(np.float32) * np.float32(slope) + np.float32(intercept)
    ends = sorted((lo * slope + intercept, hi * slope + intercept))
    return values, ends[0], ends[1]


def _first(value: Any) -> float:
    return float(value[0] if isinstance(value, pydicom.multival.MultiValue | list | tuple) else value)


def voi_transform(values: np.ndarray, ds: pydicom.Dataset, lo: float, hi: float, bits: int) -> Range | None:
    """VOI LUT or window applied to the modality output; None when the file declares neither."""
    seq = ds.get("VOILUTSequence")
    if seq and seq[0].get("LUTDescriptor") is not None and seq[0].get("LUTData") is not None:
        lut, first, depth = _lut(seq[0], ds)
        if depth != 8 and not 10 <= depth <= 16:
            raise DecodeError(f"VOI LUT with {depth} bits per entry (PS3.3 allows 8 or 10-16)")
        return _apply_lut(values, lut, first), 0.0, float(2**depth - 1)
    if ds.get("WindowCenter") is None or ds.get("WindowWidth") is None:
        return None
    center, width = _first(ds.WindowCenter), _first(ds.WindowWidth)
    function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").upper()
    span = hi - lo
    x = values.astype(np.float32)
    if function == "SIGMOID":
        if width <= 0:
            raise DecodeError(f"SIGMOID window width {width} must be > 0")
        return (span / (1 + np.exp(-4 * (x - center) / width)) + lo).astype(np.float32), lo, hi
    if function == "LINEAR":
        if width < 1:
            raise DecodeError(f"LINEAR window width {width} must be >= 1")
        center, width = center - 0.5, width - 1
    elif function != "LINEAR_EXACT":
        raise DecodeError(f"VOI LUT function {function!r} is not LINEAR, LINEAR_EXACT or SIGMOID")
    elif width <= 0:
        raise DecodeError(f"LINEAR_EXACT window width {width} must be > 0")
    if width == 0:  # LINEAR with width 1: a step at the centre
        return np.where(x <= center, np.float32(lo), np.float32(hi)), lo, hi
    out = ((x - np.float32(center)) / np.float32(width) + np.float32(0.5)) * np.float32(span) + np.float32(lo)
    return np.clip(out, lo, hi, out=out), lo, hi
