"""The served model's input contract: a request DataFrame -> one image's bytes per row.

Columns (the pyfunc signature, pipeline.serving.pyfunc_model.signature):
    image  binary  the encoded image file (PNG, JPEG, 16-bit PNG, TIFF, DICOM...). MLflow's scoring
                   server base64-decodes binary columns of `dataframe_split` / `dataframe_records`;
                   in `inputs` / `instances` it hands the base64 text on as bytes, decoded here
                   (a real image never consists of base64 characters only: PNG, JPEG, DICOM, TIFF,
                   BMP headers all hold bytes outside that alphabet).
    path   string  only under pipeline.serving.paths' policy (local batch use with allowed roots);
                   a row uses `path` only when its `image` is empty.
The rows limit applies to the request, the bytes and pixel limits to every image
(pipeline.serving.limits); every refusal is one line naming the row.
"""

from __future__ import annotations

import base64
import binascii
import re

import numpy as np
import pandas as pd

from pipeline.serving.limits import Limits, RequestRefused
from pipeline.serving.paths import PathPolicy

IMAGE, PATH = "image", "path"
_BASE64_TEXT = re.compile(rb"[A-Za-z0-9+/\s]*={0,2}\s*")


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def as_image_bytes(value, limits: Limits, where: str) -> bytes:
    """Raw bytes of one `image` cell (bytes, or base64 text as `inputs` requests carry it)."""
    if isinstance(value, str):
        value = value.encode("ascii", "replace")
    if not isinstance(value, bytes | bytearray | memoryview | np.bytes_):
        raise RequestRefused(f"{where}: the 'image' value must be bytes (base64 in JSON)")
    data = bytes(value)
    if len(data) > limits.image_bytes * 4 // 3 + 4 or not _BASE64_TEXT.fullmatch(data):
        return data  # raw bytes (an over-long base64 text is refused by size in check_image)
    try:
        return base64.b64decode(re.sub(rb"\s+", b"", data), validate=True)
    except (binascii.Error, ValueError):
        return data


def request_images(frame: pd.DataFrame, limits: Limits, policy: PathPolicy) -> list[bytes]:
    """One checked image per row, in row order; RequestRefused for the first bad row."""
    if not isinstance(frame, pd.DataFrame):
        frame = pd.DataFrame(frame)
    if IMAGE not in frame.columns and PATH not in frame.columns:
        raise RequestRefused(
            f"the request needs an '{IMAGE}' column of image bytes (base64 in JSON); "
            f"got columns {[str(c) for c in frame.columns][:10]}"
        )
    limits.check_rows(len(frame))
    images = frame[IMAGE].tolist() if IMAGE in frame.columns else [None] * len(frame)
    paths = frame[PATH].tolist() if PATH in frame.columns else [None] * len(frame)
    out = []
    for row, (image, path) in enumerate(zip(images, paths, strict=True)):
        where = f"row {row}"
        if not _missing(image):
            data = as_image_bytes(image, limits, where)
        elif not _missing(path):
            data = policy.read(path, limits.image_bytes, where)
        else:
            raise RequestRefused(f"{where}: no image bytes")
        limits.check_image(data, where)
        out.append(data)
    return out
