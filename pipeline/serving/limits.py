"""Request limits of the served model: bytes per image, pixels per image, rows per request.

The pixel count comes from the image header before anything is decoded (Pillow's lazy open reads
the PNG IHDR, JPEG SOF, TIFF/BMP/WebP/GIF headers; pydicom reads a DICOM's Rows x Columns x
NumberOfFrames and stops before the pixel data), so a 20k x 20k PNG is refused without its
400 MB being allocated. Bytes that no header reader recognises are refused here too: the decoder
only ever sees images whose size is known and within the limit.

Defaults fit medical images with room to spare (a 3000 x 3000 16-bit chest film is 18 MB and 9 Mpx;
a 4000 x 5000 mammogram 20 Mpx); each is overridable by an environment variable of the serving
process. Every refusal is a one-line RequestRefused.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
from dataclasses import dataclass

from pipeline.core.errors import ConfigError, MedpipeError

ENV_IMAGE_BYTES = "MEDPIPE_SERVING_MAX_IMAGE_BYTES"
ENV_PIXELS = "MEDPIPE_SERVING_MAX_PIXELS"
ENV_ROWS = "MEDPIPE_SERVING_MAX_ROWS"
DEFAULT_IMAGE_BYTES = 32 * 2**20  # 32 MiB per image (after base64 decoding)
DEFAULT_PIXELS = 40_000_000  # width x height (x frames) per image
DEFAULT_ROWS = 256  # images per request
DICOM_MAGIC_OFFSET, DICOM_MAGIC = 128, b"DICM"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SUPPORTED = "PNG, JPEG, TIFF, BMP, WebP, GIF or DICOM"


class RequestRefused(MedpipeError):
    """A request or one of its images is refused: one line, never file contents or a traceback."""


@dataclass(frozen=True)
class Limits:
    image_bytes: int = DEFAULT_IMAGE_BYTES
    pixels: int = DEFAULT_PIXELS
    rows: int = DEFAULT_ROWS

    @classmethod
    def from_env(cls, env: dict | None = None) -> Limits:
        env = os.environ if env is None else env
        values = {}
        for field, name, default in (
            ("image_bytes", ENV_IMAGE_BYTES, DEFAULT_IMAGE_BYTES),
            ("pixels", ENV_PIXELS, DEFAULT_PIXELS),
            ("rows", ENV_ROWS, DEFAULT_ROWS),
        ):
            raw = env.get(name, "").strip()
            try:
                values[field] = int(raw) if raw else default
            except ValueError:
                values[field] = 0
            if values[field] <= 0:
                raise ConfigError(f"{name}={raw!r} must be a positive integer (default {default})")
        return cls(**values)

    def check_rows(self, n: int) -> None:
        if n > self.rows:
            raise RequestRefused(f"request of {n} rows exceeds the limit of {self.rows} ({ENV_ROWS})")

    def check_image(self, data: bytes, where: str) -> None:
        """Refuse bytes over the size limit, of no known format, or over the pixel limit."""
        if len(data) > self.image_bytes:
            raise RequestRefused(
                f"{where}: image of {len(data)} bytes exceeds the limit of {self.image_bytes} "
                f"({ENV_IMAGE_BYTES})"
            )
        pixels = header_pixels(data)
        if pixels is None:
            raise RequestRefused(f"{where}: not a {SUPPORTED} image")
        if pixels > self.pixels:
            size = f"over {pixels - 1}" if pixels == pillow_bomb() else str(pixels)
            raise RequestRefused(
                f"{where}: image of {size} pixels exceeds the limit of {self.pixels} ({ENV_PIXELS})"
            )


def is_dicom(data: bytes) -> bool:
    return data[DICOM_MAGIC_OFFSET : DICOM_MAGIC_OFFSET + 4] == DICOM_MAGIC


def header_pixels(data: bytes) -> int | None:
    """Pixels the header declares (x frames for DICOM), without decoding; None when no reader knows it.

    A PNG's IHDR is read here (exact size, however large); other formats through Pillow, which
    refuses a header past twice its MAX_IMAGE_PIXELS (179 Mpx) as a decompression bomb: counted
    as pillow_bomb(), over any sensible limit.
    """
    if is_dicom(data):
        return _dicom_pixels(data)
    if data[:8] == PNG_MAGIC and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width * height
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as img:  # lazy: reads the header only
                width, height = img.size  # OpenCV decodes the first page of a TIFF/GIF only
        except Image.DecompressionBombError:
            return pillow_bomb()
        except Exception:  # noqa: BLE001 - Pillow raises many types for foreign bytes
            return None
    return width * height


def pillow_bomb() -> int:
    from PIL import Image

    return 2 * int(Image.MAX_IMAGE_PIXELS or 0) + 1


def _dicom_pixels(data: bytes) -> int | None:
    import pydicom

    try:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        rows, cols = int(ds.Rows), int(ds.Columns)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
    except Exception:  # noqa: BLE001 - pydicom raises many types for broken headers
        return None
    return rows * cols * max(1, frames)
