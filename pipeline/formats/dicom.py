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
from pathlib import Path

from tqdm import tqdm

from pipeline.config import DataConfig
from pipeline.core import pseudonym
from pipeline.formats.base import RawFile, Regrouped, error_row
from pipeline.formats.dicom_rows import AUDIT, SUFFIXES, candidate, emit, read_checked
from pipeline.formats.dicom_table import regroup_from_table
from pipeline.formats.imagefolder import Layout

log = logging.getLogger(__name__)
__all__ = ["AUDIT", "SUFFIXES", "DicomAdapter", "candidate"]


class DicomAdapter:
    name = "dicom"
    example = "<class>/<file>.dcm"

    def regroup(self, files: list[RawFile], data: DataConfig, extracted: Path) -> Regrouped:
        if data.table.file:  # labels (patients, splits) from the table, pixels and audit from DICOM
            return regroup_from_table(files, data, extracted)
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
        head = read_checked(f, out)
        if head is None:
            return
        parts = f.rel.parts[layout.strip :]
        if len(parts) < 2:
            out.rows.append(error_row(f, "not inside a <class>/ folder"))
            return
        if not head["patient_id"]:
            out.rows.append(error_row(f, "no PatientID in the header"))
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
        }
        emit(f, row, head, data, base, out)
