"""Kaggle IDC (breast histopathology) patches.

Published layout: `<pid>/<0|1>/<pid>_idx5_x<X>_y<Y>_class<C>.png` (277,524 50x50 patches of 279
patients), optionally below an `IDC_regular_ps50_idx5/` folder. The Kaggle zip holds the tree twice
(top level and inside that folder); the regroup stage drops exact copies. The folder label and the
patient folder must agree with the file name.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from pipeline.config import DataConfig
from pipeline.formats.base import FormatIssue, Parsed, PathAdapter

NAME_RE = re.compile(r"^(?P<pid>\d+)_idx5_x(?P<x>\d+)_y(?P<y>\d+)_class(?P<c>[01])\.png$", re.IGNORECASE)
CLASSES = ["non_idc", "idc"]


class IdcAdapter(PathAdapter):
    name = "idc"
    example = "10253/1/10253_idx5_x1001_y1051_class1.png"
    fixed_classes = tuple(CLASSES)
    fixed_positive = "idc"

    def parse(self, rel: PurePosixPath, data: DataConfig) -> Parsed | FormatIssue:
        m = NAME_RE.match(rel.name)
        if not m:
            return FormatIssue(f"name does not match <pid>_idx5_x<X>_y<Y>_class<C>.png (e.g. {self.example})")
        parents = rel.parent.parts
        if len(parents) < 2 or parents[-1] not in ("0", "1"):
            return FormatIssue("not inside a <pid>/<0|1>/ folder")
        if parents[-1] != m["c"]:
            return FormatIssue(f"folder label {parents[-1]} disagrees with class{m['c']} in the name")
        if parents[-2] != m["pid"]:
            return FormatIssue(f"patient folder {parents[-2]} disagrees with patient {m['pid']} in the name")
        return Parsed(class_name=CLASSES[int(m["c"])], patient_id=m["pid"], x=int(m["x"]), y=int(m["y"]))
