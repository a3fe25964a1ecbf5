"""Per-file work of data.format dicom, shared by its two label sources (class folders:
pipeline/formats/dicom.py; a label table: pipeline/formats/dicom_table.py): read a file's audit
header or record why it gives no image, then emit its manifest row, or its single-frame / VOI-less
copies under data.dicom.frames and data.dicom.voi (pipeline/formats/dicom_frames.py).

The header's PatientID is never put in a row here: callers pass it through pipeline.core.pseudonym.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from pipeline.config import DataConfig
from pipeline.core import dicom
from pipeline.formats.base import RawFile, Regrouped, error_row
from pipeline.formats.dicom_frames import has_voi, write_frame

SUFFIXES = frozenset({".dcm", ".dicom"})
DICOMDIR_CLASS = "1.2.840.10008.1.3.10"  # Media Storage Directory Storage
AUDIT = ("modality", "manufacturer", "photometric", "bits_stored", "transfer_syntax", "view_position")
AUDIT += ("rows", "columns", "pixel_spacing", "frames", "sop_class")


def candidate(rel: PurePosixPath) -> str | None:
    """Reason to skip a file before reading it, else None."""
    if any(
        part.startswith(".") or part.lower() in ("__macosx", "thumbs.db", "desktop.ini") for part in rel.parts
    ):
        return "hidden or OS junk file"
    if rel.name.upper() == "DICOMDIR":
        return "DICOMDIR (a media index, no image)"
    suffix = rel.suffix.lower()
    if suffix in SUFFIXES or not suffix or rel.name.replace(".", "").isdigit():
        return None
    return f"not DICOM ({suffix})"


def _line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]


def read_checked(f: RawFile, out: Regrouped) -> dict[str, Any] | None:
    """The audit header of `f` (pipeline.core.dicom.read_header), or None once `out` records why the
    file gives no image: a format_error row (a DICOM-named file that is not DICOM, an unreadable
    header) or a skip (DICOMDIR, no pixel data, a file of another kind)."""
    with open(f.path, "rb") as fh:
        head_bytes = fh.read(132)
    if not dicom.is_dicom(head_bytes):
        suffix = f.rel.suffix.lower()
        if suffix in SUFFIXES:
            out.rows.append(error_row(f, "not a DICOM file (no DICM marker at byte 128)"))
        else:
            out.skip(f.path, f"not DICOM ({suffix})" if suffix else "no suffix and not DICOM")
        return None
    try:
        head = dicom.read_header(f.path)
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types for broken headers
        out.rows.append(error_row(f, f"DICOM header unreadable: {_line(exc)}"))
        return None
    if head["sop_class"] == DICOMDIR_CLASS:
        out.skip(f.path, "DICOMDIR (a media index, no image)")
        return None
    if not head["has_pixels"]:
        out.skip(f.path, f"DICOM without pixel data (SOP class {head['sop_class']})")
        return None
    return head


def emit(
    f: RawFile, row: dict[str, Any], head: dict[str, Any], data: DataConfig, base: Path, out: Regrouped
) -> None:
    """Append `row` (label, class, pseudonymous patient, split already set) with the audit extras,
    or a format_error row for a refused multi-frame file, or the frame / VOI-less copies written
    below `base` (extracted/, relative to the project)."""
    frames = head["frames"]
    if frames > 1 and data.dicom.frames == "refuse":
        out.rows.append(error_row(f, f"multi-frame DICOM ({frames} frames) and data.dicom.frames is refuse"))
        return
    row = {**row, **{k: head[k] for k in AUDIT}, "frame": 0, "source_file": None, "format_error": None}
    copies = range(frames) if frames > 1 and data.dicom.frames == "each" else None
    if copies is None and data.dicom.voi == "dataset":
        copies = range(1)
    if copies is None:
        out.rows.append(row)
        return
    try:
        ds = dicom.parse(Path(f.path).read_bytes())
        if copies == range(1) and not has_voi(ds) and frames == 1:
            out.rows.append(row)
            return
        for i in copies:
            dest = base / f.rel.parent / f"{f.rel.name}.f{i:04d}.dcm"
            size, sha = write_frame(ds, i, dest, data.dicom.voi == "dataset")
            frames_now = {"frames": 1} if frames > 1 else {}
            out.rows.append(
                {
                    **row,
                    "path": dest.as_posix(),
                    "bytes": size,
                    "sha256": sha,
                    "frame": i,
                    "source_file": f.path,
                }
                | frames_now
            )
    except Exception as exc:  # noqa: BLE001 - an undecodable frame: validate's reason, not a crash
        out.rows.append(error_row(f, f"frames not extractable: {_line(exc)}"))
