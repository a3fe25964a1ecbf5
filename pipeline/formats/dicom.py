"""data.format: dicom. `<class>/.../<file>.dcm` (also `.dicom`, suffix-less PACS names such as
`IM0001` or a UID): labels from the class folders exactly as imagefolder (its Layout), patient =
pseudonym(PatientID) (pipeline.core.pseudonym; the raw id is never stored). Manifest extras are the
audit fields of pipeline.core.dicom.read_header minus PatientID: modality, manufacturer,
photometric, bits_stored, transfer_syntax, view_position, rows, columns, pixel_spacing, frames,
sop_class (no names, dates, institution, accession). Multi-frame files follow data.dicom.frames;
data.dicom.voi: dataset writes VOI-less copies (pipeline/formats/dicom_frames.py) into extracted/.

Rows vs skips: a `.dcm` that is not DICOM, no PatientID, a refused multi-frame file -> format_error
rows (quarantined by validate); DICOM without pixel data (SR, presentation state, KOS), DICOMDIR and
suffix-less non-DICOM files -> skipped with the reason. Mixed photometric interpretations in a class
are kept, with one warning line of counts.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from pipeline.config import DataConfig
from pipeline.core import dicom, pseudonym
from pipeline.formats.base import RawFile, Regrouped, error_row
from pipeline.formats.dicom_frames import has_voi, write_frame
from pipeline.formats.imagefolder import Layout

log = logging.getLogger(__name__)
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


class DicomAdapter:
    name = "dicom"
    example = "<class>/<file>.dcm"

    def regroup(self, files: list[RawFile], data: DataConfig, extracted: Path) -> Regrouped:
        out = Regrouped(classes=[], positive=None, rows=[])
        todo = []
        for f in files:
            reason = candidate(f.rel)
            if reason:
                out.skip(f.path, reason)
            else:
                todo.append(f)
        layout = Layout.infer([f.rel for f in todo], data)
        out.classes = list(layout.classes)
        out.positive = out.classes[1] if len(out.classes) == 2 else None
        photometric: dict[str, Counter[str]] = {}
        base = Path(os.path.relpath(extracted))
        if todo:
            pseudonym.ensure_key()
        for f in tqdm(todo, desc="regroup dicom", unit="file", mininterval=2.0, disable=None):
            self._one(f, layout, data, base, out, photometric)
        mixed = {c: dict(n) for c, n in sorted(photometric.items()) if len(n) > 1}
        if mixed:
            log.warning("mixed photometric interpretations kept (inverted where MONOCHROME1): %s", mixed)
        out.notes["patient_ids"] = f"pseudonym(PatientID), key {pseudonym.key_id()}"
        out.notes["dicom"] = {"frames": data.dicom.frames, "voi": data.dicom.voi}
        return out

    def _one(
        self, f: RawFile, layout: Layout, data: DataConfig, base: Path, out: Regrouped, photometric
    ) -> None:
        with open(f.path, "rb") as fh:
            head_bytes = fh.read(132)
        if not dicom.is_dicom(head_bytes):
            if f.rel.suffix.lower() in SUFFIXES:
                out.rows.append(error_row(f, "not a DICOM file (no DICM marker at byte 128)"))
            else:
                out.skip(f.path, "no suffix and not DICOM")
            return
        try:
            head = dicom.read_header(f.path)
        except Exception as exc:  # noqa: BLE001 - pydicom raises many types for broken headers
            out.rows.append(error_row(f, f"DICOM header unreadable: {' '.join(str(exc).split())[:200]}"))
            return
        if head["sop_class"] == DICOMDIR_CLASS:
            out.skip(f.path, "DICOMDIR (a media index, no image)")
            return
        if not head["has_pixels"]:
            out.skip(f.path, f"DICOM without pixel data (SOP class {head['sop_class']})")
            return
        parts = f.rel.parts[layout.strip :]
        if len(parts) < 2:
            out.rows.append(error_row(f, "not inside a <class>/ folder"))
            return
        if not head["patient_id"]:
            out.rows.append(error_row(f, "no PatientID in the header"))
            return
        frames = head["frames"]
        if frames > 1 and data.dicom.frames == "refuse":
            out.rows.append(
                error_row(f, f"multi-frame DICOM ({frames} frames) and data.dicom.frames is refuse")
            )
            return
        class_name = parts[0]
        photometric.setdefault(class_name, Counter())[head["photometric"] or "none"] += 1
        row = {
            "path": f.path,
            "bytes": f.bytes,
            "sha256": f.sha256,
            "label": out.classes.index(class_name),
            "class_name": class_name,
            "patient_id": pseudonym.pseudonym(head["patient_id"]),
            "x": None,
            "y": None,
            "source_split": None,
            **{k: head[k] for k in AUDIT},
            "frame": 0,
            "source_file": None,
            "format_error": None,
        }
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
                        **frames_now,
                    }
                )
        except Exception as exc:  # noqa: BLE001 - an undecodable frame: validate's reason, not a crash
            out.rows.append(error_row(f, f"frames not extractable: {' '.join(str(exc).split())[:200]}"))
