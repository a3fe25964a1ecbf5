"""Single-frame, uncompressed DICOM copies written by the dicom adapter into `extracted/`.

Used for `data.dicom.frames: each` (every frame of a multi-frame file becomes its own image) and
`data.dicom.voi: dataset` (the copy drops the VOI LUT / window, so every reader, predict and
serving included, maps it with the dataset intensity window). The copy keeps the rest of the
header (Modality LUT / rescale, PhotometricInterpretation, BitsStored, PixelRepresentation), so
decode semantics are unchanged; colour frames are stored as RGB. Raw data stays untouched.
"""

from __future__ import annotations

import copy
import hashlib
import io
from pathlib import Path

import pydicom
from pydicom.uid import ExplicitVRLittleEndian

from pipeline.core.dicom import stored_values

VOI_TAGS = ("WindowCenter", "WindowWidth", "VOILUTSequence", "VOILUTFunction", "WindowCenterWidthExplanation")
MULTI_FRAME_TAGS = ("NumberOfFrames", "FrameIncrementPointer", "PerFrameFunctionalGroupsSequence")


def write_frame(ds: pydicom.Dataset, frame: int, dest: Path, strip_voi: bool) -> tuple[int, str]:
    """Write frame `frame` of `ds` to dest as a single-frame Explicit VR Little Endian file;
    returns (bytes, sha256) of what was written."""
    arr = stored_values(ds, frame)
    out = copy.deepcopy(ds)
    for tag in MULTI_FRAME_TAGS + (VOI_TAGS if strip_voi else ()):
        if tag in out:
            del out[tag]
    colour = arr.ndim == 3
    photometric = "RGB" if colour else str(ds.PhotometricInterpretation)
    bits = arr.dtype.itemsize * 8 if colour else int(ds.BitsStored)
    out.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    out.set_pixel_data(arr, photometric, bits, generate_instance_uid=False)
    buf = io.BytesIO()
    out.save_as(buf, enforce_file_format=True)
    data = buf.getvalue()
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)
    return len(data), hashlib.sha256(data).hexdigest()


def has_voi(ds: pydicom.Dataset) -> bool:
    return any(tag in ds for tag in VOI_TAGS[:3])
