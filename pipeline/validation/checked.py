"""The checked manifest: one frame with every row's reason and detail ("" when the row is good) and
what the decode pass read from its image (height, width, channels, dtype, warning, and for >8-bit
images low/high/significant_bits). Row checks come first, so only rows with sound metadata are
decoded; duplicates are looked for among the rows that are still good."""

from __future__ import annotations

import pandas as pd

from pipeline.config import Config
from pipeline.validation import rows
from pipeline.validation.decode import FileCheck, Limits, decode_pass

DEPTH_COLUMNS = ["low", "high", "significant_bits"]  # >8-bit images: for intensity.json, not kept


def check_rows(df: pd.DataFrame, classes: list[str], cfg: Config) -> tuple[pd.DataFrame, float]:
    """df + reason, detail, height, width, channels, dtype, actual sha256; and the decode img/s."""
    problems = rows.row_problems(df, classes)
    todo = problems.index[problems["reason"] == ""]
    v = cfg.validate
    limits = Limits(min_side=v.min_side, max_side=v.max_side, max_pixels=v.max_pixels)
    shas = [s if isinstance(s, str) and s else None for s in df.loc[todo, "sha256"].astype(object)]
    columns, rate = decode_pass(df.loc[todo, "path"].astype(str).tolist(), shas, limits, v.workers)
    decoded = pd.DataFrame(columns, index=todo, columns=list(FileCheck._fields))
    out = df.join(
        decoded[["height", "width", "channels", "dtype", "warning", *DEPTH_COLUMNS]].astype(
            {"height": "Int64", "width": "Int64", "channels": "Int64", "dtype": "string", "warning": "string"}
            | dict.fromkeys(DEPTH_COLUMNS, "Int64")
        )
    )
    out["reason"] = problems["reason"]
    out["detail"] = problems["detail"]
    out.loc[todo, "reason"] = decoded["reason"]
    out.loc[todo, "detail"] = decoded["detail"]
    dup = rows.flag_duplicates(out, decoded["sha256"].reindex(out.index), out["reason"] == "")
    is_dup = dup["reason"] != ""
    out.loc[is_dup, ["reason", "detail"]] = dup.loc[is_dup, ["reason", "detail"]]
    return out, rate
