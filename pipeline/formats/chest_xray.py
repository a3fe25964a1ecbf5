"""Kermany paediatric chest X-rays (Kaggle "chest-xray-pneumonia", 5,856 JPEGs).

Published layout: `[chest_xray/][train|val|test/]<NORMAL|PNEUMONIA>/<file>.jpeg`; the Kaggle zip also
holds a second `chest_xray/chest_xray/` copy (exact copies are dropped by the regroup stage) and
`__MACOSX/` junk (ignored). Names: `IM-0115-0001.jpeg` / `NORMAL2-IM-1427-0001.jpeg` (normal; patient
`IM-0115` / `NORMAL2-IM-1427`) and `person<N>_<bacteria|virus>_<M>[_<K>].jpeg` (patient `person<N>`).
`data.classes`: binary -> NORMAL/PNEUMONIA (positive PNEUMONIA); three -> NORMAL/BACTERIA/VIRUS.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from pipeline.config import DataConfig
from pipeline.formats.base import FormatIssue, Parsed, PathAdapter

NORMAL_RE = re.compile(r"^(?P<pid>(?:NORMAL2-)?IM-\d+)-\d+(?:-\d+)*\.jpe?g$", re.IGNORECASE)
# the published set also has extra numbered parts, e.g. person447_virus_921_1.jpeg
PNEUMONIA_RE = re.compile(r"^(?P<pid>person\d+)_(?P<kind>bacteria|virus)_\d+(?:_\d+)*\.jpe?g$", re.IGNORECASE)
SPLITS = {"train": "train", "val": "val", "test": "test"}


class ChestXrayAdapter(PathAdapter):
    name = "chest_xray"
    example = "chest_xray/train/PNEUMONIA/person1_bacteria_1.jpeg"

    def classes(self, data: DataConfig) -> list[str]:
        return ["NORMAL", "PNEUMONIA"] if data.classes == "binary" else ["NORMAL", "BACTERIA", "VIRUS"]

    def positive(self, data: DataConfig) -> str | None:
        return "PNEUMONIA" if data.classes == "binary" else None

    def parse(self, rel: PurePosixPath, data: DataConfig) -> Parsed | FormatIssue:
        parents = rel.parent.parts
        folder = parents[-1].upper() if parents else ""
        if folder not in ("NORMAL", "PNEUMONIA"):
            return FormatIssue("not inside a NORMAL/ or PNEUMONIA/ folder")
        split = SPLITS.get(parents[-2].lower()) if len(parents) >= 2 else None
        normal, pneumonia = NORMAL_RE.match(rel.name), PNEUMONIA_RE.match(rel.name)
        if not normal and not pneumonia:
            return FormatIssue(
                "name matches neither IM-<id>-<n>.jpeg nor person<N>_<bacteria|virus>_<n>.jpeg"
            )
        if (folder == "NORMAL") != bool(normal):
            says = "NORMAL" if normal else "PNEUMONIA"
            return FormatIssue(f"folder {parents[-1]}/ disagrees with the name, which says {says}")
        if normal:
            return Parsed(
                class_name="NORMAL", patient_id=normal["pid"], source_split=split, extras={"pathogen": None}
            )
        kind = pneumonia["kind"].lower()
        class_name = "PNEUMONIA" if data.classes == "binary" else kind.upper()
        return Parsed(
            class_name=class_name, patient_id=pneumonia["pid"], source_split=split, extras={"pathogen": kind}
        )
