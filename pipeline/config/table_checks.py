"""Checks of data.table.* for data.format table (and dicom with a table): each returns a one-line message or None. They run at
every load (pipeline.config.checks.CROSS_CHECKS), so a table that cannot be read as configured stops
before ingest; the columns themselves are checked against the file at regroup."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.config.schema import Config

TABLE_SUFFIXES = (".csv", ".tsv", ".parquet")


def _uses_table(cfg: Config) -> bool:
    """data.format table, or data.format dicom with labels from a table (data.table.file set)."""
    return cfg.data.format == "table" or (cfg.data.format == "dicom" and cfg.data.table.file is not None)


def _table_file(cfg: Config) -> str | None:
    """The table must be named, be CSV/TSV/Parquet and lie inside data.source (ingest mirrors it)."""
    if not _uses_table(cfg):
        return None
    file = cfg.data.table.file
    if not file:
        return "params: data.format is table but data.table.file is not set; name the label table, e.g. labels.csv"
    clean = file.replace("\\", "/")
    if clean.startswith("/") or (len(clean) > 1 and clean[1] == ":") or ".." in clean.split("/"):
        return (
            f"params: data.table.file {file!r} must be a path relative to data.source, inside it "
            "(ingest mirrors the table with the images; nothing outside data.source is read)"
        )
    if PurePosixPath(clean).suffix.lower() not in TABLE_SUFFIXES:
        return f"params: data.table.file {file!r} is not a table; accepted: {', '.join(TABLE_SUFFIXES)}"
    return None


def _table_columns(cfg: Config) -> str | None:
    """Exactly one of label_column / class_columns (>= 2 of them); no column used for two things."""
    if not _uses_table(cfg):
        return None
    t = cfg.data.table
    if (t.label_column is None) == (not t.class_columns):
        return (
            "params: data.table needs exactly one of label_column (one class name per row) or "
            "class_columns (one 0/1 column per class)"
        )
    if t.class_columns and len(t.class_columns) < 2:
        return "params: data.table.class_columns needs at least 2 columns (one per class)"
    used = [t.path_column, *([t.label_column] if t.label_column else t.class_columns)]
    used += [c for c in (t.patient_column, t.split_column) if c is not None]
    twice = sorted({c for c in used if used.count(c) > 1})
    if twice:
        return f"params: data.table uses column {twice[0]!r} for two things; each column has one role"
    return None


TABLE_CHECKS = (_table_file, _table_columns)
