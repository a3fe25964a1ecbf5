"""Row checks that need no pixels (name, label, patient) and the duplicate-image check."""

from __future__ import annotations

import pandas as pd

from pipeline.core.errors import DataError
from pipeline.validation import reasons as R


def load_classes(labels: dict, source: str) -> list[str]:
    """The ordered class names of labels.json; DataError when the file's shape is wrong."""
    classes = labels.get("classes") if isinstance(labels, dict) else None
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise DataError(f"{source} must hold a non-empty list of class names under 'classes'; rerun regroup")
    return classes


def row_problems(df: pd.DataFrame, classes: list[str]) -> pd.DataFrame:
    """Per-row (reason, detail) for metadata problems; reason "" where the row's metadata is fine."""
    out = pd.DataFrame({"reason": "", "detail": ""}, index=df.index)

    def flag(mask: pd.Series, reason: str, detail: pd.Series | str) -> None:
        mask = mask & (out["reason"] == "")
        out.loc[mask, "reason"] = reason
        out.loc[mask, "detail"] = detail[mask] if isinstance(detail, pd.Series) else detail

    if "format_error" in df.columns:
        err = df["format_error"].astype("string").fillna("").str.strip()
        flag(err != "", R.BAD_NAME, err)
    label = pd.to_numeric(df["label"], errors="coerce")
    known = label.isin(range(len(classes)))
    flag(
        ~known,
        R.LABEL_NOT_IN_SET,
        "label " + df["label"].astype("string").fillna("<empty>") + f" not in 0..{len(classes) - 1}",
    )
    expected = pd.Series(
        [classes[int(i)] if k else "" for i, k in zip(label, known, strict=True)], index=df.index
    )
    name = df["class_name"].astype("string").fillna("<empty>").astype(object)
    mismatch = known & (name != expected)
    flag(
        mismatch,
        R.LABEL_NOT_IN_SET,
        "class_name " + name + " does not match label " + df["label"].astype(str) + " (" + expected + ")",
    )
    patient = df["patient_id"].astype("string").fillna("").str.strip()
    flag(patient == "", R.MISSING_PATIENT, "empty patient_id")
    return out


def flag_duplicates(df: pd.DataFrame, sha: pd.Series, good: pd.Series) -> pd.DataFrame:
    """(reason, detail) for later byte-identical copies among good rows; the first copy is kept."""
    out = pd.DataFrame({"reason": "", "detail": ""}, index=df.index)
    candidates = sha[good]
    later = candidates.duplicated(keep="first")
    if later.any():
        first_path = df.loc[good, "path"].groupby(candidates.values).transform("first")
        out.loc[later[later].index, "reason"] = R.DUPLICATE
        out.loc[later[later].index, "detail"] = "same bytes as " + first_path[later].astype(str)
    return out
