"""regroup: raw files -> canonical manifest, labels.json and the class-folder view.

The adapter for `data.format` (pipeline/formats) reads labels, patients and official splits from
the dataset's published naming convention. Files that break the convention are kept as rows with a
`format_error` reason (validate quarantines them); ignored files (read-mes, masks, OS junk) and
exact copies (same name and sha256, e.g. the doubled trees in Kaggle zips) are no rows: they are
listed with their reason in skipped.csv (output `skipped`), which validate counts in its summary.
"""

from __future__ import annotations

import logging
import os
import posixpath
from pathlib import Path, PurePosixPath

import pandas as pd

from pipeline import formats
from pipeline.config import Config
from pipeline.core import manifest
from pipeline.core.errors import ConfigError, DataError
from pipeline.formats.base import RawFile, Regrouped
from pipeline.formats.views import build_class_view, fresh_dirs

log = logging.getLogger(__name__)
INT_COLUMNS = (
    "bytes",
    "label",
    "x",
    "y",
    "magnification",
    "bits_stored",
    "rows",
    "columns",
    "frames",
    "frame",
)
SKIPPED_COLUMNS = ["path", "reason", "detail"]
# extracted/ holds pixels only for array formats (medmnist); the note keeps it from being an empty
# DVC output, which DVC warns about at every save.
EXTRACTED_NOTE = "README.txt"
EXTRACTED_TEXT = "Images unpacked from array formats (medmnist .npz); only this note for path formats.\n"


def raw_files(df: pd.DataFrame, raw: Path) -> list[RawFile]:
    """Ingest manifest rows with their path below data/raw (manifest paths are relative to cwd)."""
    root = Path(os.path.relpath(raw)).as_posix()
    prefix = "" if root == "." else root + "/"
    files = []
    for path, size, sha in zip(df["path"], df["bytes"], df["sha256"], strict=True):
        posix = posixpath.normpath(str(path).replace(os.sep, "/"))
        if not posix.startswith(prefix) or posix == root:
            raise DataError(f"ingest manifest path {path} is not under {root}; rerun ingest")
        files.append(
            RawFile(path=posix, rel=PurePosixPath(posix[len(prefix) :]), bytes=int(size), sha256=str(sha))
        )
    return files


def to_frame(result: Regrouped) -> pd.DataFrame:
    """Canonical columns first, adapter extras next, format_error last; ints nullable."""
    df = pd.DataFrame(result.rows)
    extras = [c for c in df.columns if c not in manifest.CANONICAL_COLUMNS and c != "format_error"]
    df = df.reindex(columns=[*manifest.CANONICAL_COLUMNS, *extras, "format_error"])
    for col in INT_COLUMNS:
        if col in df.columns:
            df[col] = df[col].astype("Int64")
    return df.sort_values("path", kind="stable").reset_index(drop=True)


def drop_copies(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Drop exact copies (same file name and sha256), keeping the copy nearest the raw root;
    returns the kept rows and (path, reason, detail) of the dropped ones."""
    name = df["path"].str.rsplit("/", n=1).str[-1]
    depth = df["path"].str.count("/")
    order = pd.DataFrame({"name": name, "sha": df["sha256"], "depth": depth, "path": df["path"]})
    order = order.sort_values(["depth", "path"], kind="stable")
    dup = order.duplicated(["name", "sha"], keep="first").reindex(df.index)
    kept_path = order.groupby(["name", "sha"])["path"].transform("first").reindex(df.index)
    dropped = pd.DataFrame(
        {
            "path": df.loc[dup, "path"],
            "reason": "exact copy",
            "detail": "same name and bytes as " + kept_path[dup],
        }
    )
    if dup.any():
        log.warning("ignored %d exact copies, e.g. %s", int(dup.sum()), df.loc[dup, "path"].iloc[0])
    return df[~dup].reset_index(drop=True), dropped.reset_index(drop=True)


def skipped_frame(result: Regrouped, copies: pd.DataFrame) -> pd.DataFrame:
    """Every raw file that is not a manifest row, with the reason (validate counts them)."""
    ignored = pd.DataFrame(result.skipped, columns=SKIPPED_COLUMNS)
    frames = [f for f in (ignored, copies) if len(f)]
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=SKIPPED_COLUMNS)
    return out[SKIPPED_COLUMNS].sort_values("path", kind="stable").reset_index(drop=True)


def positive_class(cfg: Config, result: Regrouped) -> str | None:
    wanted = cfg.data.positive_class
    if wanted is None:
        return result.positive
    if wanted not in result.classes:
        raise ConfigError(
            f"data.positive_class {wanted!r} is not a class of format {cfg.data.format}; "
            f"classes are: {', '.join(result.classes)}"
        )
    return wanted


def nothing_found(cfg: Config, raw: Path, example: str, errors: pd.DataFrame) -> DataError:
    msg = (
        f"no {cfg.data.format} images found under {raw}; is data.format right? expected e.g. {raw}/{example}"
    )
    if len(errors):
        first = errors.iloc[0]
        msg += f" ({len(errors)} files break the convention, e.g. {first['path']}: {first['format_error']})"
    return DataError(msg)


def run(cfg: Config, inputs: dict[str, Path], outputs: dict[str, Path]) -> dict:
    """Apply the `data.format` adapter; write manifest, labels.json, class_view/ and extracted/."""
    files = raw_files(manifest.read(inputs["manifest"], manifest.RAW_COLUMNS), inputs["raw"])
    adapter = formats.get(cfg.data.format)
    with fresh_dirs(outputs["class_view"], outputs["extracted"]):
        result = adapter.regroup(files, cfg.data, outputs["extracted"])
        (outputs["extracted"] / EXTRACTED_NOTE).write_text(EXTRACTED_TEXT)
        df = to_frame(result) if result.rows else pd.DataFrame(columns=["path", "format_error"])
        df, copies = drop_copies(df) if len(df) else (df, pd.DataFrame(columns=SKIPPED_COLUMNS))
        errors = df[df["format_error"].notna()]
        if len(errors) == len(df):
            raise nothing_found(cfg, inputs["raw"], adapter.example, errors)
        positive = positive_class(cfg, result)
        links = build_class_view(df, outputs["class_view"])
        labels = {"format": cfg.data.format, "classes": result.classes, "positive": positive}
        if cfg.data.format == "dicom":  # how its films were decoded: serving must do the same
            labels["dicom_voi"] = cfg.data.dicom.voi
        manifest.write_json(labels, outputs["labels"])
        manifest.write(df, outputs["manifest"])
        if "skipped" in outputs:
            manifest.write(skipped_frame(result, copies), outputs["skipped"])
    for path, reason in errors[["path", "format_error"]].head(20).itertuples(index=False):
        log.warning("format error: %s: %s", path, reason)
    images = df[df["format_error"].isna()]
    summary = {
        "format": cfg.data.format,
        "rows": len(df),
        "images": len(images),
        "patients": int(images["patient_id"].nunique()),
        "per_class": {str(k): int(v) for k, v in images["class_name"].value_counts().sort_index().items()},
        "format_errors": len(errors),
        "ignored": dict(sorted(result.ignored.items())),
        "exact_copies_dropped": len(copies),
        "class_view_links": links,
        "positive": positive,
        **result.notes,
    }
    log.info("regroup: %s", summary)
    return summary
