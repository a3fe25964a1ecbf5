"""Label tables (CheXpert, MIMIC-CXR-JPG, NIH style): a CSV/TSV/Parquet beside the images names
each image's path, label(s), patient and official split (data.table.*; docs/data.md#label-tables).

The table is read from data/raw (ingest mirrors it with the images) and its rows join the ingest
manifest by path relative to data.source: a cell is only looked up among ingested files, so nothing
outside the source is ever read. Every row and every file has one outcome:
  - an image row (label = index of the sorted class names, patient_id = pseudonym of the patient
    cell; for a DICOM file without a patient cell, of its header's PatientID; else one patient per
    image);
  - a format_error row, quarantined by validate: two labels / patient ids / official splits for one
    file, a cell that is no class value or split, an empty patient cell (a DICOM file's: and no
    PatientID in its header), a label no folder can carry;
  - a skipped.csv row with its reason: a file the table does not list ("not in the table"), the
    table itself, a row whose label is empty / uncertain / multi-label, a path that leaves the
    source, a listed file that is not in data/raw, a repeated row. Rows that name no usable file
    keep the path as the table writes it (not a data/raw path) and the row number in `detail`.
Patient cells are never logged or quoted; only pseudonyms (pipeline.core.pseudonym) are written.
"""

from __future__ import annotations

import logging
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from pipeline.config import DataConfig
from pipeline.core import dicom
from pipeline.core.errors import DataError
from pipeline.core.pseudonym import key_id, pseudonym
from pipeline.formats.base import (
    IMAGE_SUFFIXES,
    Parsed,
    RawFile,
    Regrouped,
    common_ignore,
    error_row,
    image_row,
)
from pipeline.formats.table_read import Entry, read_entries, resolve_path

log = logging.getLogger(__name__)
DICOM_SUFFIXES = frozenset({".dcm", ".dicom"})
LISTABLE = IMAGE_SUFFIXES | DICOM_SUFFIXES  # DICOM rows are kept; decoding them is pipeline.core's


def patient_from_file(path: str) -> str | None:
    """The patient id a file carries itself: a DICOM header's PatientID (raw; the caller only ever
    passes it to pseudonym()), or None for a file that is not DICOM or has no PatientID.

    Used for listed DICOM files when the table has no patient column; None means one patient per
    image. Nothing here logs or returns the value anywhere else (PHI)."""
    try:
        return dicom.read_header(path)["patient_id"]
    except Exception:  # noqa: BLE001 - a broken header is validate's (or the dicom adapter's) to report
        return None


def _rows(entries: list[Entry]) -> str:
    """`row 7` or `rows 3, 9`."""
    return ("row " if len(entries) == 1 else "rows ") + ", ".join(str(e.row) for e in entries)


class TableAdapter:
    name = "table"
    example = "labels.csv (data.table.file) beside the images it lists, e.g. images/0001.png"

    def regroup(self, files: list[RawFile], data: DataConfig, extracted: Path) -> Regrouped:
        t = data.table
        table_rel = resolve_path(t.file or "")[0]
        table = next((f for f in files if f.rel.as_posix() == table_rel), None)
        if table is None:
            raise DataError(
                f"label table {t.file} (data.table.file) is not among the ingested files; put it inside "
                "data.source, relative to it (ingest mirrors .csv, .tsv and .parquet)"
            )
        by_rel, outside, n_rows = read_entries(Path(table.path), data)
        out = Regrouped(classes=[], positive=None, rows=[])
        name = t.file
        for cell, reason, row in outside:
            out.skip(cell, reason, f"{name} row {row}")
        kept: list[tuple[RawFile, Entry]] = []
        for f in tqdm(files, desc="regroup table", unit="file", mininterval=2.0, disable=None):
            rel = f.rel.as_posix()
            entries = by_rel.pop(rel, [])
            junk = self.ignore(f.rel)
            if f is table:
                listed = f"also listed in {name} {_rows(entries)}" if entries else ""
                out.skip(f.path, "the label table (data.table.file)", listed)
            elif junk:
                out.skip(
                    f.path,
                    f"listed in the table but {junk}" if entries else junk,
                    f"{name} {_rows(entries)}" if entries else "",
                )
            elif not entries:
                out.skip(f.path, "not in the table")
            else:
                first = self._decide(f, entries, out, name)
                if first is not None:
                    kept.append((f, first))
        for entries in by_rel.values():
            for e in entries:
                out.skip(e.cell, "listed in the table, no such file in data/raw", f"{name} row {e.row}")
        self._finish(out, kept, data, n_rows)
        return out

    @staticmethod
    def _decide(f: RawFile, entries: list[Entry], out: Regrouped, name: str | None) -> Entry | None:
        """The entry that labels `f` (others reported), or None when `f` is an error row or skipped."""
        problems = [e for e in entries if e.problem]
        labelled = [e for e in entries if e.class_name]
        labels = dict.fromkeys(e.class_name for e in labelled)
        conflict = None
        if problems:
            conflict = problems[0].problem
        elif len(labels) > 1:
            firsts = [next(e for e in labelled if e.class_name == c) for c in labels]
            conflict = f"the table gives this file {len(labels)} labels: " + ", ".join(
                f"{e.class_name} (row {e.row})" for e in firsts
            )
        elif len({e.patient for e in labelled}) > 1:  # which ids: never said (PHI)
            conflict = f"the table gives this file different patient ids ({_rows(labelled)})"
        elif len({e.split for e in labelled}) > 1:
            conflict = f"the table gives this file different official splits ({_rows(labelled)})"
        if conflict:
            out.rows.append(error_row(f, conflict))
            return None
        if not labelled:
            out.skip(f.path, entries[0].skip or "label empty in the table", f"{name} {_rows(entries)}")
            return None
        first = labelled[0]
        for e in entries:
            if e is not first:
                reason = "duplicate table row (same path and label)" if e.class_name else e.skip or ""
                out.skip(e.cell, reason, f"{name} row {e.row}; row {first.row} labels the file")
        return first

    def ignore(self, rel: PurePosixPath) -> str | None:
        """Reason a file cannot be an image of this format (hidden, not an image), else None."""
        return common_ignore(rel, LISTABLE)

    def file_patient(self, f: RawFile) -> str | None:
        """The raw patient id `f` carries itself when the table has no patient column (DICOM)."""
        return patient_from_file(f.path) if f.rel.suffix.lower() in DICOM_SUFFIXES else None

    def _finish(
        self, out: Regrouped, kept: list[tuple[RawFile, Entry]], data: DataConfig, n_rows: int
    ) -> None:
        t = data.table
        classes = (
            sorted(t.class_columns) if t.class_columns else sorted({e.class_name or "" for _, e in kept})
        )
        empty = sorted(set(classes) - {e.class_name for _, e in kept})
        if kept and empty:
            raise DataError(f"class column {empty[0]} of {t.file} is the only 1 in no usable row; drop it")
        out.classes, out.positive = classes, (classes[1] if len(classes) == 2 else None)
        for f, e in kept:
            raw_patient = e.patient or self.file_patient(f)
            if t.patient_column and not raw_patient:
                why = f"no patient id in column {t.patient_column} (row {e.row}) nor a PatientID in the DICOM header"
                out.rows.append(error_row(f, why))
                continue
            patient = pseudonym(raw_patient) if raw_patient else f.rel.as_posix()
            parsed = Parsed(class_name=e.class_name or "", patient_id=patient, source_split=e.split)
            out.rows.append(image_row(f, parsed, classes))
        out.notes["table"] = {
            "file": t.file,
            "rows": n_rows,
            "images": len(kept),
            "patients": f"column {t.patient_column}, pseudonymised" if t.patient_column else "one per image",
        }
        if not t.patient_column and any(
            f.rel.suffix.lower() in DICOM_SUFFIXES or not f.rel.suffix for f, _ in kept
        ):
            out.notes["table"]["patients"] = "DICOM PatientID pseudonymised, else one per image"
        if out.notes["table"]["patients"] != "one per image":
            out.notes["table"]["pseudonym_key_id"] = key_id()
        log.info("table %s: %d rows -> %d images", t.file, n_rows, len(kept))
