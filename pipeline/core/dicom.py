"""DICOM in: sniff, audit header, and a pixel decode that follows PS3.3 C.11 / PS3.4 N.2.

decode order (what a viewer does): stored values (BitsStored honoured, signed sign-extended) ->
modality LUT or RescaleSlope/Intercept -> VOI LUT or WindowCenter/Width (when asked and present) ->
MONOCHROME1 inversion last (in the value domain: v -> lo + hi - v over the output range).
Colour (RGB, YBR_*, PALETTE COLOR) comes out as RGB. Compressed syntaxes go through pydicom's
pixel plugins; we ship GPL-free ones (pylibjpeg-openjpeg, pylibjpeg-rle; JPEG baseline via Pillow).
pipeline.core.dicom_uint8 turns the result into the pipeline's uint8/uint16/float32 pixels.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_color_lut, pixel_array

from pipeline.core.errors import DecodeError

PREAMBLE = 128
MAGIC = b"DICM"
# (7FE0,0010/0008/0009) PixelData / FloatPixelData / DoubleFloatPixelData, little endian tag bytes
_PIXEL_TAGS = (b"\xe0\x7f\x10\x00", b"\xe0\x7f\x08\x00", b"\xe0\x7f\x09\x00")
# A preamble-less file starts with a file meta (0002,xxxx) or an identifying (0008,xxxx) element.
BARE_STARTS = (b"\x02\x00", b"\x08\x00")
# transfer syntax UID -> (name, what decodes it) for syntaxes the GPL-free set does not cover
NEEDS = {
    "1.2.840.10008.1.2.4.57": ("JPEG Lossless", "pylibjpeg-libjpeg (GPL) or python-gdcm"),
    "1.2.840.10008.1.2.4.70": ("JPEG Lossless SV1", "pylibjpeg-libjpeg (GPL) or python-gdcm"),
    "1.2.840.10008.1.2.4.80": ("JPEG-LS Lossless", "pylibjpeg-libjpeg (GPL) or python-gdcm"),
    "1.2.840.10008.1.2.4.81": ("JPEG-LS Near-lossless", "pylibjpeg-libjpeg (GPL) or python-gdcm"),
    "1.2.840.10008.1.2.4.51": ("JPEG Extended (12-bit)", "pylibjpeg-libjpeg (GPL) or python-gdcm"),
}


class Pixels(NamedTuple):
    """One decoded frame: values after the LUTs (RGB for colour), the output range [lo, hi] the
    values live in, whether a VOI transform made them, and BitsStored."""

    values: np.ndarray
    lo: float
    hi: float
    voi: bool
    bits_stored: int


def is_dicom(data: bytes) -> bool:
    """b"DICM" at offset 128 (Part 10 file), or a preamble-less dataset starting with group 0008."""
    if data[PREAMBLE : PREAMBLE + 4] == MAGIC:
        return True
    if len(data) < 12 or bytes(data[:2]) not in BARE_STARTS:
        return False
    vr = bytes(data[4:6])
    explicit = vr.isalpha() and vr.isupper()
    return explicit or int.from_bytes(data[4:8], "little") < 1024  # implicit VR: a short first value


def _source(path_or_bytes: str | Path | bytes) -> io.BufferedIOBase:
    if isinstance(path_or_bytes, bytes | bytearray | memoryview):
        return io.BytesIO(path_or_bytes)
    return open(path_or_bytes, "rb")  # noqa: SIM115 - closed by the caller's with


def read_header(path_or_bytes: str | Path | bytes) -> dict[str, Any]:
    """The audit fields only (snake_case), read with stop_before_pixels. `patient_id` is the raw
    PatientID: the caller pseudonymises it at once and never stores it. InvalidDicomError for non-DICOM."""
    with _source(path_or_bytes) as fp:
        ds = pydicom.dcmread(fp, stop_before_pixels=True, force=not _has_magic(fp))
        has_pixels = fp.read(4) in _PIXEL_TAGS
    if "SOPClassUID" not in ds and "PatientID" not in ds and "Rows" not in ds:
        raise InvalidDicomError("no DICOM header elements")
    spacing = ds.get("PixelSpacing")
    meta = getattr(ds, "file_meta", None)
    return {
        "modality": _text(ds.get("Modality")),
        "manufacturer": _text(ds.get("Manufacturer")),
        "photometric": _text(ds.get("PhotometricInterpretation")),
        "bits_stored": _int(ds.get("BitsStored")),
        "transfer_syntax": _text(meta.get("TransferSyntaxUID")) if meta is not None else None,
        "view_position": _text(ds.get("ViewPosition")),
        "rows": _int(ds.get("Rows")),
        "columns": _int(ds.get("Columns")),
        "pixel_spacing": "\\".join(str(v) for v in spacing) if spacing else None,
        "frames": _int(ds.get("NumberOfFrames")) or 1,
        "patient_id": _text(ds.get("PatientID")),
        "has_pixels": has_pixels,
        "sop_class": _text(ds.get("SOPClassUID")),
    }


def _has_magic(fp: io.BufferedIOBase) -> bool:
    fp.seek(PREAMBLE)
    ok = fp.read(4) == MAGIC
    fp.seek(0)
    return ok


def _text(value: Any) -> str | None:
    return str(value).strip() or None if value is not None else None


def _int(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def parse(data: bytes) -> pydicom.Dataset:
    """The whole dataset from bytes; DecodeError with the reason when it is not DICOM."""
    if not is_dicom(data):
        raise DecodeError("not a DICOM file (no DICM marker at byte 128)")
    try:
        return pydicom.dcmread(io.BytesIO(data), force=data[PREAMBLE : PREAMBLE + 4] != MAGIC)
    except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
        raise DecodeError(f"DICOM header unreadable: {_line(exc)}") from exc


def stored_values(ds: pydicom.Dataset, frame: int = 0) -> np.ndarray:
    """Frame `frame` as stored (colour as RGB); DecodeError naming a missing decoder."""
    if "PixelData" not in ds:
        what = _text(ds.get("SOPClassUID"))
        name = getattr(getattr(ds, "SOPClassUID", None), "name", None) or what
        raise DecodeError(f"DICOM without pixel data ({name})")
    n_frames = _int(ds.get("NumberOfFrames")) or 1
    if not 0 <= frame < n_frames:
        raise DecodeError(f"frame {frame} requested of a {n_frames}-frame DICOM")
    syntax = str(ds.file_meta.get("TransferSyntaxUID", "")) if hasattr(ds, "file_meta") else ""
    try:
        arr = pixel_array(ds, index=frame if n_frames > 1 else None)
    except (NotImplementedError, RuntimeError) as exc:
        if syntax in NEEDS:
            name, package = NEEDS[syntax]
            raise DecodeError(f"no decoder installed for {name} ({syntax}); {package} decodes it") from exc
        raise DecodeError(f"DICOM pixel data undecodable ({syntax or 'no syntax'}): {_line(exc)}") from exc
    except (ValueError, AttributeError, KeyError, TypeError, EOFError) as exc:
        raise DecodeError(f"DICOM pixel data undecodable: {_line(exc)}") from exc
    if _text(ds.get("PhotometricInterpretation")) == "PALETTE COLOR":
        arr = apply_color_lut(arr, ds)
    return arr


def _line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


def decode_dicom(data: bytes, frame: int = 0, voi: bool = True) -> np.ndarray:
    """Frame `frame` after modality LUT, VOI (when `voi` and present), MONOCHROME1 inversion."""
    return decode_pixels(parse(data), frame, voi).values


def decode_pixels(ds: pydicom.Dataset, frame: int = 0, voi: bool = True) -> Pixels:
    """decode_dicom with the output range (see Pixels)."""
    from pipeline.core.dicom_luts import modality, voi_transform

    arr = stored_values(ds, frame)
    bits = _int(ds.get("BitsStored")) or arr.dtype.itemsize * 8
    photometric = _text(ds.get("PhotometricInterpretation")) or "MONOCHROME2"
    if arr.ndim == 3 or not photometric.startswith("MONOCHROME"):
        top = float(np.iinfo(arr.dtype).max) if arr.dtype.kind in "ui" and arr.dtype.itemsize > 1 else 255.0
        top = min(top, 2.0**bits - 1) if arr.dtype.kind == "u" else top
        return Pixels(arr, 0.0, top, False, bits)
    values, lo, hi = modality(arr, ds, bits)
    used = False
    if voi:
        out = voi_transform(values, ds, lo, hi, bits)
        if out is not None:
            values, lo, hi = out
            used = True
    if photometric == "MONOCHROME1":
        values = _invert(values, lo, hi)
    return Pixels(values, lo, hi, used, bits)


def _invert(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    if values.dtype.kind in "ui" and float(lo).is_integer() and float(hi).is_integer():
        flipped = np.int64(lo) + np.int64(hi) - values.astype(np.int64)
        return np.clip(flipped, lo, hi).astype(values.dtype)
    return (lo + hi) - values.astype(np.float32)
