"""Reading a label table (data.format table): the file as text cells, what one cell means, and the
rows as entries grouped by the path they name (pipeline/formats/table.py decides each file).

Every cell is read as text (an empty cell is ""; CSV `NA`/`null` stay text, as file names may be),
so a label `0` stays the class name "0". Error messages name the table, its columns and row numbers
(1 = the first row below the header) and never quote a cell of the patient column or of a column
the pipeline does not use (names, dates, accession numbers: PHI stays out of logs and messages).
"""

from __future__ import annotations

import posixpath
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pandas as pd

from pipeline.config import DataConfig, TableConfig
from pipeline.core.errors import DataError

# official-split spellings seen in public tables -> the split stage's names
SPLIT_SYNONYMS = {
    **dict.fromkeys(("train", "training", "tr"), "train"),
    **dict.fromkeys(("val", "valid", "validation", "validate", "dev", "tune", "tuning"), "val"),
    **dict.fromkeys(("test", "testing", "holdout", "hold-out", "hold_out"), "test"),
}
POSITIVE, NEGATIVE, UNCERTAIN = 1, 0, -1
_CLASS_VALUES = {"1": POSITIVE, "1.0": POSITIVE, "0": NEGATIVE, "0.0": NEGATIVE, "": NEGATIVE}
_CLASS_VALUES |= {"nan": NEGATIVE, "none": NEGATIVE, "-1": UNCERTAIN, "-1.0": UNCERTAIN}
MAX_LABEL_CHARS = 100
DICOM_NAMES = (".dcm", ".dicom")  # an empty patient cell is allowed for these (the header has one)
_PARSE_ERRORS = (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError)


def used_columns(t: TableConfig) -> list[str]:
    """The columns the pipeline reads; every other column is never looked at."""
    labels = [t.label_column] if t.label_column else list(t.class_columns)
    return [t.path_column, *labels, *(c for c in (t.patient_column, t.split_column) if c)]


def read_table(path: Path, name: str, t: TableConfig) -> pd.DataFrame:
    """The used columns of the table at `path` (shown as `name`) as text cells, one row per row."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            df = pd.read_parquet(path)
        else:
            sep = "\t" if suffix == ".tsv" else ","
            df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except _PARSE_ERRORS as exc:
        raise DataError(f"label table {name} cannot be read: {str(exc).splitlines()[0][:160]}") from None
    except Exception as exc:  # pyarrow and friends: the type only (their text may quote cells)
        raise DataError(f"label table {name} cannot be read ({type(exc).__name__})") from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in used_columns(t) if c not in df.columns]
    if missing:
        raise DataError(
            f"label table {name} has no column {', '.join(map(repr, missing))}; its columns are: "
            f"{', '.join(map(repr, df.columns))} (set data.table.*_column)"
        )
    used = df[used_columns(t)]
    return used.astype(object).where(used.notna(), "").astype(str).apply(lambda col: col.str.strip())


def resolve_path(value: str) -> tuple[str | None, str | None]:
    """(path below data.source, None) for a table cell, or (None, reason to skip the row).

    Paths are relative to data.source (the root the images were ingested from), never to the
    table's folder; `\\` reads as `/`, `./` and `a/../` fold away. An absolute path or one that climbs
    out of the source is refused; the cell is only ever looked up among ingested files."""
    clean = value.replace("\\", "/")
    if not clean:
        return None, "no image path in the table row"
    if clean.startswith("/") or (len(clean) > 1 and clean[1] == ":"):
        return None, "path leaves data.source (absolute)"
    norm = posixpath.normpath(clean)
    if norm == ".." or norm.startswith("../"):
        return None, "path leaves data.source (../)"
    return norm, None


def official_split(value: str, column: str, row: int) -> tuple[str | None, str | None]:
    """(train|val|test or None for a blank cell, None) or (None, format problem)."""
    if not value:
        return None, None
    split = SPLIT_SYNONYMS.get(value.lower())
    if split is None:
        return None, f"{column} is {value[:40]!r} in row {row}; expected train, val, test or a synonym"
    return split, None


def class_from_columns(cells: dict[str, str], row: int) -> tuple[str | None, str | None, bool]:
    """One-vs-rest columns -> (class, None, False), (None, skip reason, False) or (None, problem, True).

    1 = positive, 0 or blank = negative, -1 = uncertain (CheXpert): a row is one image of the class
    whose column alone holds 1; no 1 -> label empty; several 1s -> multi-label row; -1 in any class
    column -> uncertain; anything else is a format problem of that row."""
    values = {}
    for column, cell in cells.items():
        value = _CLASS_VALUES.get(cell.lower())
        if value is None:
            return None, f"{column} is {cell[:40]!r} in row {row}; expected 1, 0, -1 or blank", True
        values[column] = value
    uncertain = [c for c, v in values.items() if v == UNCERTAIN]
    if uncertain:
        return None, "uncertain label (-1) in a class column", False
    positive = [c for c, v in values.items() if v == POSITIVE]
    if len(positive) > 1:
        return None, "several class columns are 1 (multi-label row)", False
    if not positive:
        return None, "label empty in the table", False
    return positive[0], None, False


@dataclass
class Entry:
    """One table row that names a path inside the source (the patient cell stays in memory only)."""

    row: int
    cell: str
    class_name: str | None = None
    skip: str | None = None
    problem: str | None = None
    patient: str = ""
    split: str | None = None


def _label_problem(label: str, row: int) -> str | None:
    if "/" in label or "\\" in label or label.startswith(".") or len(label) > MAX_LABEL_CHARS:
        return f"label {label[:40]!r} in row {row} cannot name a class folder (no /, \\, leading dot, <= 100 chars)"
    return None


def read_entries(
    path: Path, data: DataConfig
) -> tuple[dict[str, list[Entry]], list[tuple[str, str, int]], int]:
    """({path below the source: its rows}, [(cell, reason, row) of rows naming no path inside], rows)."""
    t = data.table
    df = read_table(path, t.file or "", t)
    by_rel: dict[str, list[Entry]] = defaultdict(list)
    outside: list[tuple[str, str, int]] = []
    columns = {c: df[c].tolist() for c in df.columns}  # plain lists: 3x faster than to_dict("records")
    for i in range(len(df)):
        row, cells = i + 1, {c: values[i] for c, values in columns.items()}
        rel, why = resolve_path(cells[t.path_column])
        if rel is None:
            outside.append((cells[t.path_column], why or "", row))
            continue
        e = Entry(row=row, cell=cells[t.path_column])
        if t.label_column:
            e.class_name = cells[t.label_column] or None
            e.skip = None if e.class_name else "label empty in the table"
            e.problem = _label_problem(e.class_name, row) if e.class_name else None
        else:
            e.class_name, note, bad = class_from_columns({c: cells[c] for c in t.class_columns}, row)
            e.problem, e.skip = (note, None) if bad else (None, note)
        e.split, split_problem = (
            official_split(cells[t.split_column], t.split_column, row) if t.split_column else (None, None)
        )
        e.problem = e.problem or split_problem
        if t.patient_column:
            e.patient = cells[t.patient_column]  # empty for a DICOM file: its header's PatientID (table.py)
            if not e.patient and not e.problem and PurePosixPath(rel).suffix.lower() not in DICOM_NAMES:
                e.problem = f"no patient id in column {t.patient_column} (row {row})"
        by_rel[rel].append(e)
    return by_rel, outside, len(df)
