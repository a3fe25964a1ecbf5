"""Generic class-folder layout: `<class>/<file>` (files may sit deeper inside a class folder).

Classes are the folder names, sorted (label = index). A single wrapper folder above the class
folders (`mydata/<class>/<file>`) is stripped. Patient id: the named group `patient` of
`data.patient_regex` searched in the file name (every image must match, else DataError), or the
file stem when no regex is set. Positive class: the second of two classes, none for multiclass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pipeline.config import DataConfig
from pipeline.config.table_checks import TABLE_SUFFIXES
from pipeline.core.errors import ConfigError, DataError
from pipeline.formats.base import FormatIssue, Parsed, PathAdapter, RawFile, Regrouped


def compile_patient_regex(pattern: str | None) -> re.Pattern[str] | None:
    if pattern is None:
        return None
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"data.patient_regex {pattern!r} is not a valid regex: {exc}") from exc
    if "patient" not in regex.groupindex:
        raise ConfigError(f"data.patient_regex {pattern!r} needs a named group, e.g. (?P<patient>[^_]+)")
    return regex


def patient_of(regex: re.Pattern[str], name: str) -> str | None:
    """The `patient` group found in a file name, or None."""
    m = regex.search(name)
    return m["patient"] if m and m["patient"] else None


@dataclass(frozen=True)
class Layout:
    """What the whole tree says: wrapper folders to strip, the classes, the patient regex."""

    strip: int
    classes: tuple[str, ...]
    patient: re.Pattern[str] | None

    @classmethod
    def infer(cls, rels: list[PurePosixPath], data: DataConfig) -> Layout:
        strip = 0
        while rels and all(
            len(r.parts) >= strip + 3 and r.parts[strip] == rels[0].parts[strip] for r in rels
        ):
            strip += 1
        classes = sorted({r.parts[strip] for r in rels if len(r.parts) >= strip + 2})
        regex = compile_patient_regex(data.patient_regex)
        if regex is not None:
            misses = [r.name for r in rels if not patient_of(regex, r.name)]
            if misses:
                raise DataError(
                    f"data.patient_regex {regex.pattern!r} does not match {len(misses)} of {len(rels)} "
                    f"file names, e.g. {misses[0]!r}; fix the regex or set it to null (patient = file stem)"
                )
        return cls(strip=strip, classes=tuple(classes), patient=regex)


class ImageFolderAdapter(PathAdapter):
    name = "imagefolder"
    example = "<class>/<file>.png"

    def __init__(self, layout: Layout | None = None) -> None:
        self.layout = layout

    def classes(self, data: DataConfig) -> list[str]:
        return list(self.layout.classes) if self.layout else []

    def positive(self, data: DataConfig) -> str | None:
        classes = self.classes(data)
        return classes[1] if len(classes) == 2 else None

    def parse(self, rel: PurePosixPath, data: DataConfig) -> Parsed | FormatIssue:
        assert self.layout is not None
        parts = rel.parts[self.layout.strip :]
        if len(parts) < 2:
            return FormatIssue("not inside a <class>/ folder")
        regex = self.layout.patient
        patient = patient_of(regex, rel.name) if regex else rel.stem
        return Parsed(class_name=parts[0], patient_id=patient)

    def regroup(self, files: list[RawFile], data: DataConfig, extracted: Path) -> Regrouped:
        if self.layout is not None:
            return super().regroup(files, data, extracted)
        rels = [f.rel for f in files if self.ignore(f.rel, data) is None]
        layout = Layout.infer(rels, data)
        refuse_imageless_classes(files, layout, data, self)
        return ImageFolderAdapter(layout).regroup(files, data, extracted)


def _fix(example: str) -> str:
    if example.endswith(("(.dcm))", "(.dicom))")):
        return "set data.format: dicom for DICOM files (docs/data.md#dicom) or remove the folder"
    return "convert them to PNG or remove the folder"


def refuse_imageless_classes(
    files: list[RawFile], layout: Layout, data: DataConfig, adapter: PathAdapter
) -> None:
    """DataError for a class folder whose files are all skipped (e.g. only .dcm): it would vanish
    from labels.json. (A folder with no files at all never reaches data/raw: ingest mirrors files.)"""
    skipped: dict[str, list[str]] = {}
    for f in files:
        parts = f.rel.parts[layout.strip :]
        reason = adapter.ignore(f.rel, data)
        if f.rel.suffix.lower() in TABLE_SUFFIXES:  # a metadata table (ingest keeps them) is no image
            continue
        if len(parts) >= 2 and parts[0] not in layout.classes and reason and not reason.startswith("hidden"):
            skipped.setdefault(parts[0], []).append(f"{f.rel.name} ({reason})")
    if skipped:
        name, what = next(iter(sorted(skipped.items())))
        raise DataError(
            f"class folder {name}/ holds no image OpenCV can read, only {len(what)} skipped file(s), e.g. "
            f"{what[0]}; {_fix(what[0])} ({len(skipped)} such folder(s))"
        )
