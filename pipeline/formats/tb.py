"""Tuberculosis chest X-rays: NLM Montgomery County (138) and Shenzhen (662) sets.

Published names: `MCUCXR_0001_0.png`, `CHNCXR_0001_1.png` (label = the last digit), anywhere in the
tree (downloads have `MontgomerySet/CXR_png/`, `ChinaSet_AllFiles/CXR_png/`). Lung masks
(`ManualMask/leftMask/...`, same file names) and clinical readings (`*.txt`) are ignored. One image
per patient: patient = the stem without the label (`MCUCXR_0001`); extra column `site`.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from pipeline.config import DataConfig
from pipeline.formats.base import FormatIssue, Parsed, PathAdapter, common_ignore

NAME_RE = re.compile(r"^(?P<pid>(?P<site>MCUCXR|CHNCXR)_\d+)_(?P<label>[01])\.png$", re.IGNORECASE)
SITES = {"MCUCXR": "montgomery", "CHNCXR": "shenzhen"}
CLASSES = ["normal", "tuberculosis"]


class TbAdapter(PathAdapter):
    name = "tb"
    example = "MontgomerySet/CXR_png/MCUCXR_0001_0.png"
    fixed_classes = tuple(CLASSES)
    fixed_positive = "tuberculosis"

    def ignore(self, rel: PurePosixPath, data: DataConfig) -> str | None:
        if any("mask" in part.lower() for part in rel.parent.parts):
            return "lung mask"
        return common_ignore(rel)

    def parse(self, rel: PurePosixPath, data: DataConfig) -> Parsed | FormatIssue:
        m = NAME_RE.match(rel.name)
        if not m:
            return FormatIssue("name does not match MCUCXR_<n>_<0|1>.png or CHNCXR_<n>_<0|1>.png")
        return Parsed(
            class_name=CLASSES[int(m["label"])],
            patient_id=m["pid"].upper(),
            extras={"site": SITES[m["site"].upper()]},
        )
