"""pydicom's own answer for a DICOM frame, the reference pipeline.core.dicom is compared with
(tests/integration/test_dicom_reference.py, benchmarks/dicom.py): pixel_array -> apply_modality_lut
-> apply_voi_lut (pydicom's float64 code), then MONOCHROME1 inversion over the same output range
PS3.3 gives (VOI LUT: [0, 2^d - 1]; window: pydicom's own y_min..y_max; none: the rescaled stored
range). Also the list of bundled test files with pixel data, and their comparison rows."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut

from pipeline.core import dicom
from pipeline.core.images import DecodeError


def _range(ds: pydicom.Dataset, voi_used: str | None) -> tuple[float, float]:
    bits = int(ds.BitsStored)
    if voi_used == "lut":
        return 0.0, float(2 ** int(ds.VOILUTSequence[0].LUTDescriptor[2]) - 1)
    if ds.get("ModalityLUTSequence"):
        return 0.0, float(2 ** int(ds.ModalityLUTSequence[0].LUTDescriptor[2]) - 1)
    signed = int(ds.get("PixelRepresentation", 0)) == 1
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    if "RescaleSlope" in ds and "RescaleIntercept" in ds:
        s, i = float(ds.RescaleSlope), float(ds.RescaleIntercept)
        lo, hi = sorted((lo * s + i, hi * s + i))
    return float(lo), float(hi)


def reference(ds: pydicom.Dataset, frame: int = 0, voi: bool = True) -> np.ndarray:
    """pydicom's values for one frame (RGB for colour), MONOCHROME1 inverted last."""
    n = int(ds.get("NumberOfFrames", 1) or 1)
    arr = ds.pixel_array
    arr = arr[frame] if n > 1 else arr
    photometric = str(ds.PhotometricInterpretation)
    if photometric == "PALETTE COLOR":
        return apply_color_lut(arr, ds)
    if not photometric.startswith("MONOCHROME"):
        return arr
    arr = apply_modality_lut(arr, ds)
    used = None
    if voi and ds.get("VOILUTSequence"):
        used = "lut"
    elif voi and ds.get("WindowCenter") is not None and ds.get("WindowWidth") is not None:
        used = "window"
    if used:
        arr = apply_voi_lut(arr, ds)
    if photometric == "MONOCHROME1":
        lo, hi = _range(ds, used)
        arr = (lo + hi) - arr.astype(np.float64)
    return arr


def bundled_files() -> list[Path]:
    """pydicom's bundled test files that carry pixel data (the installed folder only: pydicom's
    get_testdata_files would also try to download its external set)."""
    from pydicom.data.data_manager import DATA_ROOT

    out = []
    for f in sorted((Path(DATA_ROOT) / "test_files").rglob("*")):
        if not f.is_file():
            continue
        try:
            head = dicom.read_header(f)
        except Exception:  # noqa: BLE001 - not DICOM (the folder holds other test data too)
            continue
        if head["has_pixels"]:
            out.append(f)
    return out


def compare(path: Path) -> dict:
    """{file, syntax, photometric, frames, max_abs_diff | quarantine} for frame 0 (last frame too)."""
    data = path.read_bytes()
    head = dicom.read_header(data)
    row = {
        "file": path.name,
        "syntax": head["transfer_syntax"],
        "photometric": head["photometric"],
        "bits_stored": head["bits_stored"],
        "frames": head["frames"],
    }
    try:
        ds = dicom.parse(data)
        diffs = []
        for frame in sorted({0, head["frames"] - 1}):
            ours = dicom.decode_pixels(ds, frame).values.astype(np.float64)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ref = reference(pydicom.dcmread(path), frame).astype(np.float64)
            if ours.shape != ref.shape:
                raise AssertionError(f"shape {ours.shape} != reference {ref.shape}")
            diffs.append(float(np.max(np.abs(ours - ref))) if ours.size else 0.0)
            row["range"] = float(np.ptp(ref)) if ref.size else 0.0
        row["max_abs_diff"] = max(diffs)
    except DecodeError as exc:
        row["quarantine"] = str(exc)
    return row
