"""Look at an image's bytes before decoding: format signature, header dimensions, truncation.

Reading the dimensions from the header lets the decode pass reject decompression bombs
(a tiny file declaring a huge canvas) before OpenCV allocates the pixels.
"""

from __future__ import annotations

import struct

SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
)
# JPEG start-of-frame markers (C4 = DHT, C8 = JPG extension, CC = DAC are not frames).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD9)})


def sniff(data: bytes) -> str | None:
    """The image format named by the leading bytes, or None when no known signature matches."""
    for magic, fmt in SIGNATURES:
        if data.startswith(magic):
            return fmt
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[128:132] == b"DICM":
        return "dicom"
    return None


def image_end(data: bytes, fmt: str | None) -> int | None:
    """Offset just past the image's own bytes: after the PNG IEND chunk, after the JPEG FFD9 that
    follows the frame's scan data (an EXIF thumbnail's FFD9 does not count), len(data) for other
    formats; None when that end is missing (truncated). Bytes after it are trailing, not damage."""
    if fmt == "png":
        pos = data.rfind(b"IEND")
        if pos < 12 or data[pos - 4 : pos] != b"\x00\x00\x00\x00":
            return None
        return min(pos + 8, len(data))  # + CRC
    if fmt == "jpeg":
        eoi = data.rfind(b"\xff\xd9")
        scan = _jpeg_scan(data)
        if eoi < 0 or (scan is not None and eoi < scan):
            return None
        return eoi + 2
    return len(data)


def is_truncated(data: bytes, fmt: str | None) -> bool:
    """True when a PNG lacks its IEND chunk or a JPEG lacks its FFD9 end-of-image marker."""
    return image_end(data, fmt) is None


def _jpeg_scan(data: bytes) -> int | None:
    """Offset of the first start-of-scan (FFDA) marker, walking the segments; None if not reached."""
    pos = 2
    try:
        while pos + 4 <= len(data):
            if data[pos] != 0xFF:
                return None
            marker = data[pos + 1]
            if marker == 0xFF:
                pos += 1
            elif marker == 0xDA:
                return pos
            elif marker in _STANDALONE_MARKERS:
                pos += 2
            else:
                pos += 2 + struct.unpack(">H", data[pos + 2 : pos + 4])[0]
    except struct.error:
        return None
    return None


def png_channels(data: bytes) -> int | None:
    """Channels a PNG declares (IHDR colour type; palette counts as 3), or None if not a PNG."""
    if data[12:16] != b"IHDR" or len(data) < 26:
        return None
    return {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}.get(data[25])


def dimensions(data: bytes, fmt: str | None) -> tuple[int, int] | None:
    """(width, height) declared by the header, or None when unknown (format or header unparsed)."""
    try:
        reader = _READERS.get(fmt or "")
        return reader(data) if reader else None
    except (struct.error, IndexError, ValueError):
        return None


def _png(data: bytes) -> tuple[int, int] | None:
    if data[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", data[16:24])


def _jpeg(data: bytes) -> tuple[int, int] | None:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _STANDALONE_MARKERS:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker in _SOF_MARKERS:
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        pos += 2 + length
    return None


def _bmp(data: bytes) -> tuple[int, int] | None:
    (dib_size,) = struct.unpack("<I", data[14:18])
    if dib_size == 12:  # OS/2 BITMAPCOREHEADER
        return struct.unpack("<HH", data[18:22])
    width, height = struct.unpack("<ii", data[18:26])
    return abs(width), abs(height)


def _gif(data: bytes) -> tuple[int, int] | None:
    return struct.unpack("<HH", data[6:10])


def _tiff(data: bytes) -> tuple[int, int] | None:
    order = "<" if data[:2] == b"II" else ">"
    (ifd,) = struct.unpack(order + "I", data[4:8])
    (count,) = struct.unpack(order + "H", data[ifd : ifd + 2])
    dims: dict[int, int] = {}
    for i in range(count):
        entry = data[ifd + 2 + 12 * i : ifd + 14 + 12 * i]
        tag, kind = struct.unpack(order + "HH", entry[:4])
        if tag in (256, 257):  # ImageWidth, ImageLength: SHORT or LONG
            dims[tag] = struct.unpack(
                order + ("H" if kind == 3 else "I"), entry[8 : 10 if kind == 3 else 12]
            )[0]
    return (dims[256], dims[257]) if len(dims) == 2 else None


def _webp(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        return width, int.from_bytes(data[27:30], "little") + 1
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    return None


_READERS = {"png": _png, "jpeg": _jpeg, "bmp": _bmp, "gif": _gif, "tiff": _tiff, "webp": _webp}


def png_significant_bits(data: bytes) -> int | None:
    """Significant bits a 16-bit PNG declares in its sBIT chunk (the largest over its channels),
    or None (not a 16-bit PNG, or no sBIT before the image data)."""
    if data[12:16] != b"IHDR" or len(data) < 33 or data[24] != 16:
        return None
    pos = 33  # after the signature (8) and IHDR (4 + 4 + 13 + 4)
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        if kind == b"sBIT":
            values = data[pos + 8 : pos + 8 + length]
            return max(values) if values else None
        if kind in (b"IDAT", b"IEND"):
            return None
        pos += 12 + length
    return None


def exif_orientation(data: bytes) -> int | None:
    """The EXIF orientation tag (1..8) of a JPEG's APP1 segment, or None when absent."""
    pos = 2
    try:
        while pos + 4 <= len(data) and data[pos] == 0xFF:
            marker = data[pos + 1]
            if marker == 0xDA:
                return None
            (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
            if marker == 0xE1 and data[pos + 4 : pos + 10] == b"Exif\x00\x00":
                return _tiff_orientation(data[pos + 10 : pos + 2 + length])
            pos += 2 + length
    except (struct.error, IndexError):
        return None
    return None


def _tiff_orientation(tiff: bytes) -> int | None:
    order = "<" if tiff[:2] == b"II" else ">"
    (ifd,) = struct.unpack(order + "I", tiff[4:8])
    (count,) = struct.unpack(order + "H", tiff[ifd : ifd + 2])
    for i in range(count):
        entry = tiff[ifd + 2 + 12 * i : ifd + 14 + 12 * i]
        if struct.unpack(order + "H", entry[:2])[0] == 0x0112:
            value = struct.unpack(order + "H", entry[8:10])[0]
            return value if 1 <= value <= 8 else None
    return None
