"""BreakHis v1 (breast tumour histology, 7,909 images of 82 patients).

Published layout: `BreaKHis_v1/histology_slides/breast/<benign|malignant>/SOB/<tumour_type>/
SOB_<B|M>_<T>_<slide>/<40|100|200|400>X/SOB_<B|M>_<T>-<slide>-<mag>-<seq>.png`; a flat folder of
such files is accepted too (the name carries everything). Patient = slide id (`14-22549AB`).
Every folder that carries a label (benign/malignant, tumour type, slide, magnification) must agree
with the file name, otherwise the file becomes a format_error row. Real BreakHis has one slide
under two tumour types (ductal and lobular carcinoma); it stays one patient.
`data.label`: class -> benign / malignant (positive malignant); tumor_type -> the 8 tumour types
(multi-class, no positive class).
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from pathlib import Path, PurePosixPath

from pipeline.config import DataConfig
from pipeline.formats.base import FormatIssue, Ignored, Parsed, PathAdapter, RawFile, Regrouped

log = logging.getLogger(__name__)

NAME_RE = re.compile(
    r"^SOB_(?P<bm>[BM])_(?P<code>[A-Z]+)-(?P<slide>\d+-[0-9A-Za-z]+)-(?P<mag>\d+)-(?P<seq>\d+)\.png$",
    re.IGNORECASE,
)
SLIDE_DIR_RE = re.compile(r"^SOB_(?P<bm>[BM])_(?P<code>[A-Z]+)_(?P<slide>.+)$", re.IGNORECASE)
MAG_DIR_RE = re.compile(r"^(?P<mag>\d+)X$", re.IGNORECASE)
TUMOUR_TYPES = {
    "A": "adenosis",
    "F": "fibroadenoma",
    "PT": "phyllodes_tumor",
    "TA": "tubular_adenoma",
    "DC": "ductal_carcinoma",
    "LC": "lobular_carcinoma",
    "MC": "mucinous_carcinoma",
    "PC": "papillary_carcinoma",
}
BENIGN_CODES = {"A", "F", "PT", "TA"}
CLASSES = ["benign", "malignant"]


def _folder_conflicts(parents: tuple[str, ...], bm: str, code: str, slide: str, mag: int) -> list[str]:
    """Folders of the nested layout that disagree with what the file name says."""
    cls = "benign" if bm == "B" else "malignant"
    out = []
    for part in parents:
        low = part.lower()
        if low in CLASSES and low != cls:
            out.append(f"folder {part}/ but the name says {cls}")
        elif low in TUMOUR_TYPES.values() and low != TUMOUR_TYPES[code]:
            out.append(f"folder {part}/ but the name says {TUMOUR_TYPES[code]}")
        elif m := SLIDE_DIR_RE.match(part):
            if (m["bm"].upper(), m["code"].upper(), m["slide"]) != (bm, code, slide):
                out.append(f"slide folder {part}/ disagrees with the name")
        elif (m := MAG_DIR_RE.match(part)) and int(m["mag"]) != mag:
            out.append(f"folder {part}/ but the name says {mag}X")
    return out


class BreakhisAdapter(PathAdapter):
    name = "breakhis"
    example = "BreaKHis_v1/histology_slides/breast/benign/SOB/adenosis/SOB_B_A_14-22549AB/40X/SOB_B_A-14-22549AB-40-001.png"

    def classes(self, data: DataConfig) -> list[str]:
        return list(TUMOUR_TYPES.values()) if data.label == "tumor_type" else list(CLASSES)

    def positive(self, data: DataConfig) -> str | None:
        return None if data.label == "tumor_type" else "malignant"

    def parse(self, rel: PurePosixPath, data: DataConfig) -> Parsed | FormatIssue | Ignored:
        m = NAME_RE.match(rel.name)
        if not m:
            return FormatIssue("name does not match SOB_<B|M>_<type>-<slide>-<mag>-<seq>.png")
        bm, code, slide, mag = m["bm"].upper(), m["code"].upper(), m["slide"], int(m["mag"])
        if code not in TUMOUR_TYPES:
            return FormatIssue(f"unknown tumour type code {code!r} (known: {', '.join(TUMOUR_TYPES)})")
        if (code in BENIGN_CODES) != (bm == "B"):
            return FormatIssue(f"tumour type {TUMOUR_TYPES[code]} contradicts {bm} in the name")
        conflicts = _folder_conflicts(rel.parent.parts, bm, code, slide, mag)
        if conflicts:
            return FormatIssue("; ".join(conflicts))
        if mag not in data.magnifications:
            return Ignored(f"magnification {mag}X not in data.magnifications")
        return Parsed(
            class_name=TUMOUR_TYPES[code]
            if data.label == "tumor_type"
            else ("benign" if bm == "B" else "malignant"),
            patient_id=slide,
            extras={"tumour_type": TUMOUR_TYPES[code], "magnification": mag},
        )

    def regroup(self, files: list[RawFile], data: DataConfig, extracted: Path) -> Regrouped:
        out = super().regroup(files, data, extracted)
        types: dict[str, set[str]] = defaultdict(set)
        for row in out.rows:
            if row.get("tumour_type"):
                types[row["patient_id"]].add(row["tumour_type"])
        multi = {slide: sorted(t) for slide, t in sorted(types.items()) if len(t) > 1}
        if multi:
            log.warning("slides under more than one tumour type (kept as one patient): %s", multi)
        out.notes["slides_with_several_tumour_types"] = multi
        return out
