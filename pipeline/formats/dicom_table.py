"""data.format dicom with data.table.file set: labels (and patients, official splits) from the label
table exactly as data.format table reads them (pipeline/formats/table.py, every row counted), pixels
and audit header fields from each listed DICOM file (pipeline/formats/dicom_rows.py).

Without a patient column, a file's patient is pseudonym(PatientID) from its header; a file without
PatientID is its own patient (as in a table). data.dicom.frames and data.dicom.voi apply as with
class folders. A listed file that is not DICOM is skipped (other suffixes) or a format_error row
(`.dcm`/`.dicom` that is not DICOM); DICOMDIR and pixel-less DICOM are skipped with their reason.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from pipeline.config import DataConfig
from pipeline.formats.base import RawFile, Regrouped
from pipeline.formats.dicom_rows import candidate, emit, read_checked
from pipeline.formats.table import TableAdapter, patient_from_file

log = logging.getLogger(__name__)


class DicomTableLabels(TableAdapter):
    """The table reader with DICOM's idea of a candidate file (suffix-less PACS names included)."""

    def ignore(self, rel: PurePosixPath) -> str | None:
        return candidate(rel)

    def file_patient(self, f: RawFile) -> str | None:
        return patient_from_file(f.path)


def regroup_from_table(files: list[RawFile], data: DataConfig, extracted: Path) -> Regrouped:
    """The table's rows, each image row checked against its DICOM header and given the audit extras."""
    labelled = DicomTableLabels().regroup(files, data, extracted)
    out = Regrouped(
        classes=labelled.classes,
        positive=labelled.positive,
        rows=[],
        ignored=labelled.ignored,
        skipped=labelled.skipped,
        notes=labelled.notes,
    )
    by_path = {f.path: f for f in files}
    base = Path(os.path.relpath(extracted))
    photometric: dict[str, Counter[str]] = {}
    for row in tqdm(labelled.rows, desc="regroup dicom", unit="file", mininterval=2.0, disable=None):
        f = by_path[row["path"]]
        head = read_checked(f, out) if row["format_error"] is None else None
        if row["format_error"] is not None:
            out.rows.append(row)
        elif head is not None:
            photometric.setdefault(row["class_name"], Counter())[head["photometric"] or "none"] += 1
            emit(f, row, head, data, base, out)
    mixed = {c: dict(n) for c, n in sorted(photometric.items()) if len(n) > 1}
    if mixed:
        log.warning("mixed photometric interpretations kept (inverted where MONOCHROME1): %s", mixed)
    out.notes["dicom"] = {
        "frames": data.dicom.frames,
        "voi": data.dicom.voi,
        "labels": f"table {data.table.file}",
    }
    return out
