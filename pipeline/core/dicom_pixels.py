"""DICOM frame -> the pixels the rest of the pipeline reads (OpenCV conventions, like decode_raw).

- grey with a VOI transform applied (the file's own VOI LUT or window, `voi=True`): the VOI output
  range [lo, hi] maps linearly to 0..255 (uint8); MONOCHROME1 is already inverted in that range;
- grey without VOI (none in the file, or `voi=False`): the modality output as it is, so validate's
  dataset intensity window (data/interim/intensity.json, carried in label_map.json) maps every
  image of the dataset alike: uint8 when it fits 0..255, uint16 when it fits 0..65535 (e.g. 12-bit
  in 16; `significant_bits` = BitsStored when no rescale moved the range), else float32 (CT
  Hounsfield units, fractional slopes);
- colour: RGB reordered to BGR (decode_raw's OpenCV order; to_channels turns it back to RGB).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from pipeline.core.dicom import decode_pixels, parse


class Frame(NamedTuple):
    image: np.ndarray  # HxW or HxWx3 (BGR), uint8 | uint16 | float32
    significant_bits: int | None  # BitsStored when the values are the unscaled stored range
    voi: bool  # the file's VOI transform made the values


def to_pipeline(data: bytes, frame: int = 0, voi: bool = True) -> Frame:
    """Decode one frame of DICOM bytes into decode_raw's conventions (see the module docstring)."""
    px = decode_pixels(parse(data), frame, voi)
    values = px.values
    if values.ndim == 3:
        if values.dtype not in (np.uint8, np.uint16):
            values = np.clip(values, 0, 65535).astype(np.uint16)
        return Frame(np.ascontiguousarray(values[:, :, ::-1]), px.bits_stored, False)
    if px.voi:
        scale = np.float32(255.0 / (px.hi - px.lo)) if px.hi > px.lo else np.float32(0)
        out = (values.astype(np.float32) - np.float32(px.lo)) * scale
        return Frame(np.clip(np.rint(out), 0, 255).astype(np.uint8), None, True)
    integral = values.dtype.kind in "ui"
    if integral and px.lo >= 0 and px.hi <= 255:
        return Frame(values.astype(np.uint8, copy=False), px.bits_stored, False)
    if integral and px.lo >= 0 and px.hi <= 65535:
        unscaled = px.lo == 0 and px.hi == 2**px.bits_stored - 1
        return Frame(values.astype(np.uint16, copy=False), px.bits_stored if unscaled else None, False)
    return Frame(values.astype(np.float32, copy=False), None, False)
