"""Shared types for dataset format adapters.

An adapter turns the files of the ingest manifest (paths under data/raw) into canonical rows:
label, class_name, patient_id, x, y, source_split (+ adapter extras). Files that look like data
but break the format's naming convention become rows with a `format_error` reason (validate
quarantines them); files the convention says to ignore (read-mes, masks, macOS junk) are counted.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

from tqdm import tqdm

from pipeline.config import DataConfig

log = logging.getLogger(__name__)

# What OpenCV decodes (validate decides whether each one is a good image); a subset of what
# ingest keeps (pipeline.sources.files.DATA_SUFFIXES).
IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".jfif", ".tif", ".tiff", ".bmp", ".webp", ".gif", ".pgm", ".ppm", ".pnm"}
)
JUNK_NAMES = frozenset({"__macosx", "thumbs.db", "desktop.ini"})


@dataclass(frozen=True)
class RawFile:
    """One row of the ingest manifest; `rel` is the path below data/raw."""

    path: str
    rel: PurePosixPath
    bytes: int
    sha256: str


@dataclass(frozen=True)
class Parsed:
    """What a file name and its folders say about one image."""

    class_name: str
    patient_id: str
    x: int | None = None
    y: int | None = None
    source_split: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FormatIssue:
    """The file looks like data but breaks the naming convention (becomes a format_error row)."""

    reason: str


@dataclass(frozen=True)
class Ignored:
    """The convention says to skip this file (counted in the summary, no row)."""

    reason: str


@dataclass
class Regrouped:
    """An adapter's answer: rows plus the class list (index = label)."""

    classes: list[str]
    positive: str | None
    rows: list[dict[str, Any]]
    ignored: Counter[str] = field(default_factory=Counter)
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # (path, reason, detail) of each
    notes: dict[str, Any] = field(default_factory=dict)

    def skip(self, path: str, reason: str, detail: str = "") -> None:
        """Leave a file (or a label-table row) out: counted by reason, listed in data/interim/skipped.csv."""
        self.ignored[reason] += 1
        self.skipped.append((path, reason, detail))


def common_ignore(rel: PurePosixPath, suffixes: frozenset[str] = IMAGE_SUFFIXES) -> str | None:
    """Reason to skip a file every format ignores (hidden/macOS junk, non-image files), else None."""
    if any(part.startswith(".") or part.lower() in JUNK_NAMES for part in rel.parts):
        return "hidden or OS junk file"
    if rel.suffix.lower() not in suffixes:
        return f"not an image ({rel.suffix or 'no suffix'})"
    return None


def image_row(f: RawFile, parsed: Parsed, classes: list[str]) -> dict[str, Any]:
    return {
        "path": f.path,
        "bytes": f.bytes,
        "sha256": f.sha256,
        "label": classes.index(parsed.class_name),
        "class_name": parsed.class_name,
        "patient_id": parsed.patient_id,
        "x": parsed.x,
        "y": parsed.y,
        "source_split": parsed.source_split,
        **parsed.extras,
        "format_error": None,
    }


def error_row(f: RawFile, reason: str) -> dict[str, Any]:
    return {"path": f.path, "bytes": f.bytes, "sha256": f.sha256, "format_error": reason}


class PathAdapter:
    """An adapter that reads labels from file names and folders (every format but medmnist)."""

    name: ClassVar[str]
    example: ClassVar[str]  # a path below data/raw that fits, for error messages
    # Formats with a fixed label set declare it here; others override classes()/positive().
    fixed_classes: ClassVar[tuple[str, ...]] = ()
    fixed_positive: ClassVar[str | None] = None

    def classes(self, data: DataConfig) -> list[str]:
        if not self.fixed_classes:
            raise NotImplementedError
        return list(self.fixed_classes)

    def positive(self, data: DataConfig) -> str | None:
        return self.fixed_positive

    def ignore(self, rel: PurePosixPath, data: DataConfig) -> str | None:
        """Reason to skip a file (no row), or None to parse it."""
        return common_ignore(rel)

    def parse(self, rel: PurePosixPath, data: DataConfig) -> Parsed | FormatIssue | Ignored:
        raise NotImplementedError

    def regroup(self, files: list[RawFile], data: DataConfig, extracted: Path) -> Regrouped:
        """Parse every file; `extracted` is unused (path formats keep pixels in data/raw)."""
        classes = self.classes(data)
        out = Regrouped(classes=classes, positive=self.positive(data), rows=[])
        for f in tqdm(files, desc=f"regroup {self.name}", unit="file", mininterval=2.0, disable=None):
            skip = self.ignore(f.rel, data)
            result = Ignored(skip) if skip else self.parse(f.rel, data)
            if isinstance(result, Ignored):
                out.skip(f.path, result.reason)
            elif isinstance(result, FormatIssue):
                out.rows.append(error_row(f, result.reason))
            else:
                out.rows.append(image_row(f, result, classes))
        return out
