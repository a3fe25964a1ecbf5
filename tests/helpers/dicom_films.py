"""Synthetic DICOM films built with pydicom from small arrays (unit, e2e tests and benchmarks/dicom.py).

`film(pixels, ...)` -> Part 10 bytes: MONOCHROME1/2 or RGB, any BitsStored in 8/16 allocated bits,
signed or not, rescale, window or VOI LUT, uncompressed / RLE / JPEG 2000 (lossless), multi-frame
(pixels N x H x W). PHI-looking header values are planted on purpose (pseudonym and scan tests).
"""

from __future__ import annotations

import io

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

SYNTAX = {"raw": ExplicitVRLittleEndian, "rle": RLELossless, "j2k": JPEG2000Lossless}
PHI = {"PatientName": "Doe^Jane", "PatientBirthDate": "19700101", "InstitutionName": "St Example"}


def film(
    pixels: np.ndarray,
    *,
    patient: str | None = "PAT-0001",
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    syntax: str = "raw",
    rescale: tuple[float, float] | None = None,
    window: tuple[float, float] | None = None,
    voi_lut: tuple[int, list[int]] | None = None,  # (first mapped value, entries), 16-bit entries
    modality: str = "DX",
    preamble: bool = True,
    sop_class: str = SecondaryCaptureImageStorage,
    with_pixels: bool = True,
    header: dict[str, str] | None = None,
) -> bytes:
    """DICOM bytes holding `pixels` (uint8/uint16/int16; HxW, NxHxW frames, HxWx3 RGB); `header`
    sets (or overrides) keyword elements, e.g. planted PHI: {"AccessionNumber": "..."}."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = uid = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, uid
    ds.Modality, ds.Manufacturer, ds.ViewPosition = modality, "Synthetic", "PA"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    for key, value in PHI.items():
        setattr(ds, key, value)
    if patient is not None:
        ds.PatientID = patient
    for key, value in (header or {}).items():
        setattr(ds, key, value)
    if with_pixels:
        colour = photometric == "RGB"
        bits = bits_stored or pixels.dtype.itemsize * 8
        ds.set_pixel_data(pixels, photometric, bits, generate_instance_uid=False)
        if not colour and pixels.ndim == 3 and "NumberOfFrames" not in ds:
            ds.NumberOfFrames = len(pixels)
        ds.PixelSpacing = [0.1, 0.1]
        if rescale:
            ds.RescaleSlope, ds.RescaleIntercept = rescale
        if window:
            ds.WindowCenter, ds.WindowWidth = window
        if voi_lut:
            item = Dataset()
            item.LUTDescriptor = [len(voi_lut[1]), voi_lut[0], 16]
            item.add_new(0x00283006, "US", list(voi_lut[1]))  # LUTData, US: entries as numbers
            ds.VOILUTSequence = Sequence([item])
        if syntax != "raw":
            ds.compress(SYNTAX[syntax], generate_instance_uid=False)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=preamble)
    return buf.getvalue()


def ramp(h: int = 32, w: int = 40, top: int = 4095, dtype=np.uint16, seed: int = 0) -> np.ndarray:
    """A diagonal ramp 0..top plus a little noise: every pixel value matters for comparisons."""
    rng = np.random.default_rng(seed)
    base = np.add.outer(np.arange(h), np.arange(w)) / (h + w - 2) * top
    noise = rng.integers(0, max(top // 50, 1), (h, w))
    return np.clip(base + noise, 0, top).astype(dtype)
