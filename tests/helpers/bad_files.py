"""Byte builders for the bad-input suites: images written from scratch or with OpenCV, each unique
(seeded pixels) so no two valid files are byte-identical by accident."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np


def pixels(
    seed: int, shape: tuple[int, ...] = (32, 32, 3), dtype: type = np.uint8, high: int = 255
) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, high + 1, shape, dtype=dtype)


def encode(img: np.ndarray, ext: str = ".png", params: tuple = ()) -> bytes:
    ok, buf = cv2.imencode(ext, img, list(params))
    assert ok, ext
    return buf.tobytes()


def png(seed: int, shape: tuple[int, ...] = (32, 32, 3)) -> bytes:
    return encode(pixels(seed, shape))


def jpeg(seed: int, shape: tuple[int, ...] = (32, 32, 3)) -> bytes:
    return encode(pixels(seed, shape), ".jpg")


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_chunks(width: int, height: int, depth: int, colour: int, raw: bytes, extra: bytes = b"") -> bytes:
    """A PNG from scratch (gray+alpha, palettes, huge IHDRs, sBIT: what cv2.imencode cannot write)."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", zlib.compress(raw))
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"IEND", b"")


def gray16_png(values: np.ndarray, sbit: int | None = None) -> bytes:
    """A 16-bit gray PNG of `values` (H x W uint16), optionally with an sBIT chunk."""
    h, w = values.shape
    raw = b"".join(b"\x00" + values[y].astype(">u2").tobytes() for y in range(h))
    extra = chunk(b"sBIT", bytes([sbit])) if sbit else b""
    return png_chunks(w, h, 16, 0, raw, extra)


def gray_alpha_png(seed: int = 0) -> bytes:
    raw = b"".join(b"\x00" + bytes(pixels(seed + y, (64,)).tolist()) for y in range(32))
    return png_chunks(32, 32, 8, 4, raw)


def palette_png(seed: int) -> bytes:
    plte = chunk(b"PLTE", bytes(range(48)))
    raw = b"".join(b"\x00" + bytes((pixels(seed + y, (32,)) % 16).tolist()) for y in range(32))
    return png_chunks(32, 32, 8, 3, raw, plte)


def exif_app1(orientation: int, thumbnail: bytes = b"") -> bytes:
    """An APP1 Exif segment with IFD0 holding Orientation (and `thumbnail` bytes appended)."""
    ifd = struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack("<I", 0)
    tiff = b"II*\x00" + struct.pack("<I", 8) + ifd + thumbnail
    payload = b"Exif\x00\x00" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def with_exif(jpeg_bytes: bytes, orientation: int, thumbnail: bytes = b"") -> bytes:
    return jpeg_bytes[:2] + exif_app1(orientation, thumbnail) + jpeg_bytes[2:]


def jpeg_main_eoi_missing_with_thumbnail(seed: int) -> bytes:
    """A JPEG whose EXIF thumbnail ends in FFD9 but whose own scan lost its FFD9 (truncated)."""
    full = with_exif(jpeg(seed), 1, thumbnail=jpeg(seed + 1, (8, 8, 3)))
    return full[:-2]


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    return png_chunks(width, height, 8, 2, b"\x00" * 10)


def corrupt_idat(seed: int) -> bytes:
    data = bytearray(png(seed))
    start = data.find(b"IDAT") + 8
    data[start : start + 40] = bytes(40)
    return bytes(data)


def float_tiff(seed: int) -> bytes:
    return encode(pixels(seed, (32, 32)).astype(np.float32), ".tiff")


def jpeg_sof_bomb(seed: int) -> bytes:
    data = bytearray(jpeg(seed))
    sof = next(i for i in range(2, len(data) - 1) if data[i] == 0xFF and data[i + 1] in (0xC0, 0xC2))
    data[sof + 5 : sof + 9] = struct.pack(">HH", 60000, 60000)
    return bytes(data)
