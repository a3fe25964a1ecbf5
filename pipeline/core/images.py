"""Deterministic image decoding and preprocessing with OpenCV (no randomness here); DICOM bytes
are handed to pipeline.core.dicom_pixels (pydicom + the standard's LUTs), every other format to OpenCV.

decode(): bytes/file -> uint8 HxWxC (C = 1 or 3, RGB order). Images deeper than 8 bits are mapped
with the dataset's intensity window (validate records it in data/interim/intensity.json; it
travels in label_map.json), never per image: without a window uint16 uses its full range (>> 8).
JPEG EXIF orientation is applied (as every viewer shows the image), in validate and training alike.
preprocess(): decode + resize to the model's input size. Random augmentation lives in
pipeline/balancing/augment.py (offline, balance stage) and in the model (Keras layers), never here.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from pipeline.core.errors import DecodeError  # raised here; readers catch it as images.DecodeError

Window = tuple[float, float] | None  # (lo, hi) intensity range mapped to 0..255 for >8-bit images


def apply_window(img: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """Map [lo, hi] linearly to [0, 255] (clipped): the same mapping for every image of a dataset."""
    lo, hi = float(window[0]), float(window[1])
    if hi <= lo:
        raise ValueError(f"intensity window {window} is empty")
    out = (img.astype(np.float32) - lo) * (255.0 / (hi - lo))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def to_uint8(img: np.ndarray, window: Window = None) -> np.ndarray:
    if img.dtype == np.uint8:
        return img
    if window is not None:
        return apply_window(img, window)
    if img.dtype == np.uint16:  # the same fixed mapping for every image (no per-image rule)
        return (img >> 8).astype(np.uint8)
    img = img.astype(np.float32)
    lo, hi = float(img.min()), float(img.max())
    return np.zeros(img.shape, np.uint8) if hi <= lo else ((img - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def to_channels(img: np.ndarray, channels: int) -> np.ndarray:
    """OpenCV's BGR/BGRA/gray -> RGB (channels=3) or gray (channels=1), always HxWxC."""
    if img.ndim == 2:
        img = img[:, :, None]
    c = img.shape[2]
    if channels == 1:
        if c == 1:
            return img
        code = cv2.COLOR_BGRA2GRAY if c == 4 else cv2.COLOR_BGR2GRAY
        return cv2.cvtColor(img, code)[:, :, None]
    if c == 1:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB if c == 4 else cv2.COLOR_BGR2RGB)


JPEG_SOI = b"\xff\xd8\xff"
# JPEG: any colour/depth but EXIF orientation applied (IMREAD_UNCHANGED ignores it); JPEG has no alpha.
_JPEG_FLAGS = cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH


def decode_raw(data: bytes | np.ndarray, voi: bool = True) -> np.ndarray:
    """Decode with every channel and the native bit depth kept (for validation); JPEG EXIF
    orientation applied. `voi=False`: a DICOM's own VOI LUT/window is ignored (data.dicom.voi:
    dataset, as the VOI-less copies regroup writes), leaving the modality values for the window."""
    buf = np.frombuffer(data, np.uint8) if isinstance(data, bytes | bytearray | memoryview) else data
    if buf.size == 0:
        raise DecodeError("empty file")
    if bytes(buf[128:132]) == b"DICM" or bytes(buf[:2]) in (b"\x02\x00", b"\x08\x00"):  # maybe DICOM
        from pipeline.core import dicom, dicom_pixels  # pydicom loads only for DICOM bytes

        raw = data if isinstance(data, bytes) else buf.tobytes()
        if dicom.is_dicom(raw):
            return dicom_pixels.to_pipeline(raw, voi=voi).image
    is_jpeg = buf.size >= 3 and bytes(buf[:3]) == JPEG_SOI
    img = cv2.imdecode(buf, _JPEG_FLAGS if is_jpeg else cv2.IMREAD_UNCHANGED)
    if img is None:
        raise DecodeError("not a decodable image")
    return img


def decode(
    data: bytes | np.ndarray, channels: int = 3, window: Window = None, voi: bool = True
) -> np.ndarray:
    return to_channels(to_uint8(decode_raw(data, voi), window), channels)


def read(path: str | Path, channels: int = 3, window: Window = None) -> np.ndarray:
    return decode(Path(path).read_bytes(), channels, window)


def preprocess(path: str | Path, size: int, channels: int = 3, window: Window = None) -> np.ndarray:
    """Decode the file and resize to size x size (see preprocess_bytes). uint8 HxWxC."""
    return preprocess_bytes(Path(path).read_bytes(), size, channels, window)


def preprocess_bytes(
    data: bytes, size: int, channels: int = 3, window: Window = None, voi: bool = True
) -> np.ndarray:
    """Decode image bytes and resize to size x size (INTER_AREA when shrinking). uint8 HxWxC.

    `window` = the dataset's (lo, hi) intensity range for images deeper than 8 bits (recorded by
    validate, carried in label_map.json); None keeps the per-image fallback. The served model
    (pipeline.serving) calls this on uploaded bytes, the stages through preprocess on files: the
    same numbers either way. `voi`: see decode_raw (False for models trained with voi: dataset).
    """
    img = decode(data, channels, window, voi)
    if img.shape[0] != size or img.shape[1] != size:
        interp = cv2.INTER_AREA if img.shape[0] > size else cv2.INTER_LINEAR
        img = cv2.resize(img, (size, size), interpolation=interp)
        if img.ndim == 2:
            img = img[:, :, None]
    return img
