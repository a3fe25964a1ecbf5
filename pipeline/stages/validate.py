"""validate: decode every image once, quarantine bad rows, check the rest with Great Expectations.

inputs:  manifest (canonical manifest CSV), labels (labels.json from regroup),
         skipped (optional: regroup's skipped.csv, files the adapter left out, with a reason),
         raw (optional: data/raw, for the counts of files ingest did not take, by reason)
outputs: validated (manifest + height, width, channels, dtype, warning), quarantine (path, reason,
         detail), summary (everything: per-reason, per-class and skipped counts, channels, decode
         rate, GX timing), metrics (optional; the DVC metrics file: METRIC_KEYS only, numbers, no
         timings), docs (GX Data Docs site + validation_result.json), intensity (optional: the
         dataset-level window for >8-bit images, see pipeline.validation.intensity)

Bad rows are never dropped silently: each lands in quarantine.csv with one reason from
pipeline.validation.reasons.REASONS. More than validate.max_quarantine_fraction of them, or a
failed expectation, raises ValidationFailed and no output is written.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.config import Config
from pipeline.core import manifest
from pipeline.core.errors import ValidationFailed
from pipeline.sources.state import load_state
from pipeline.validation import expectations, intensity
from pipeline.validation.checked import DEPTH_COLUMNS, check_rows
from pipeline.validation.decode import resolve_workers
from pipeline.validation.inputs import check_keys, check_params, read_inputs
from pipeline.validation.reasons import REASONS

log = logging.getLogger(__name__)
QUARANTINE_COLUMNS = ["path", "reason", "detail"]
SHOWN = 5  # bad files named in a ValidationFailed message
LOGGED = 200  # bad files logged (one WARNING line each) before it is raised
EXAMPLES = 3  # skipped files / warnings named per reason in the log and the summary
# What `dvc metrics show/diff` compares run to run: deterministic numbers (timings stay in summary).
METRIC_KEYS = ("n_rows", "n_valid", "n_quarantined", "quarantine_fraction", "n_patients", "n_classes")
METRIC_KEYS += ("n_expectations", "gx_success")


def validation_metrics(summary: dict) -> dict:
    """The numbers-only metrics of the validate stage (gx_success as 1/0)."""
    out = {key: summary.get(key) for key in METRIC_KEYS}
    out["n_classes"] = len(summary.get("classes") or {})
    out["gx_success"] = int(bool(summary.get("gx_success")))
    return out


def enforce_limit(quarantine: pd.DataFrame, n_rows: int, cfg: Config, where: Path) -> None:
    """ValidationFailed naming count, fraction, limit and the first bad files if too many are bad."""
    limit = cfg.validate.max_quarantine_fraction
    fraction = len(quarantine) / n_rows
    if fraction <= limit:
        return
    for r in quarantine.head(LOGGED).itertuples():
        log.warning("quarantined %s: %s (%s)", r.path, r.reason, r.detail)
    shown = ", ".join(f"{r.path} ({r.reason})" for r in quarantine.head(SHOWN).itertuples())
    more = f" and {len(quarantine) - SHOWN} more" if len(quarantine) > SHOWN else ""
    raise ValidationFailed(
        f"{len(quarantine)} of {n_rows} images quarantined ({fraction:.1%}) > validate.max_quarantine_fraction "
        f"{limit:.1%}: {shown}{more}; fix or remove these files (the log above lists up to {LOGGED}; {where} "
        f"is written when the stage passes) or raise the limit"
    )


def skipped_files(path: Path | None) -> dict:
    """{reason: {count, examples}} from regroup's skipped.csv (files never in the manifest), logged."""
    if path is None:
        return {}
    df = manifest.read(path, ["path", "reason"])
    out = {}
    for reason, group in df.groupby("reason", sort=True):
        examples = group["path"].head(EXAMPLES).tolist()
        out[str(reason)] = {"count": len(group), "examples": examples}
        log.warning("skipped %d file(s): %s, e.g. %s", len(group), reason, ", ".join(examples))
    return out


@dataclass
class _Rows:
    """The manifest's rows once checked: all of them, the valid and the quarantined ones."""

    checked: pd.DataFrame
    validated: pd.DataFrame
    quarantine: pd.DataFrame
    window: dict  # the dataset-level intensity window of the valid images
    rate: float  # decode img/s


def _partition(checked: pd.DataFrame, rate: float, cfg: Config, where: Path) -> _Rows:
    """Split the checked rows: each bad one goes to quarantine with its reason; too many of them
    stop the stage here, before anything is written."""
    bad = checked["reason"] != ""
    quarantine = checked.loc[bad, QUARANTINE_COLUMNS].reset_index(drop=True)
    enforce_limit(quarantine, len(checked), cfg, where)
    window = intensity.dataset_window(checked.loc[~bad])
    validated = checked.loc[~bad].drop(
        columns=["reason", "detail", "format_error", *DEPTH_COLUMNS], errors="ignore"
    )
    validated["warning"] = validated["warning"].fillna("")
    return _Rows(checked, validated.reset_index(drop=True), quarantine, window, rate)


def _upstream_skips(inputs: dict[str, Path]) -> tuple[dict, dict]:
    """(skipped by regroup, not ingested by ingest), logged: files that never reached the manifest
    are counted in the summary, so a shrinking dataset shows up there."""
    skipped = skipped_files(inputs.get("skipped"))
    not_ingested = load_state(Path(inputs["raw"])).get("skipped", {}) if "raw" in inputs else {}
    if not_ingested:
        log.warning("not ingested (see the ingest log for examples): %s", not_ingested)
    return skipped, not_ingested


def _channel_counts(validated: pd.DataFrame, cfg: Config) -> pd.Series:
    """Images per channel count; logged when none has preprocess.channels (preprocess converts)."""
    channels = validated["channels"].value_counts().sort_index()
    if cfg.preprocess.channels not in channels.index:
        log.info(
            "images have %s channels; preprocess converts them to %d",
            list(channels.index),
            cfg.preprocess.channels,
        )
    return channels


def _summary(cfg: Config, parts: _Rows, classes: list[str], channels: pd.Series, upstream: tuple) -> dict:
    """summary.json without the GX part: counts per reason, class and channel count, the files
    that never reached the manifest, the intensity window and the decode speed."""
    checked, validated, quarantine = parts.checked, parts.validated, parts.quarantine
    skipped, not_ingested = upstream
    return {
        "n_rows": len(checked),
        "n_valid": len(validated),
        "n_quarantined": len(quarantine),
        "quarantine_fraction": round(len(quarantine) / len(checked), 6),
        "reasons": {reason: int((quarantine["reason"] == reason).sum()) for reason in REASONS},
        "classes": {name: int((validated["class_name"] == name).sum()) for name in classes},
        "n_patients": int(validated["patient_id"].nunique()),
        "channels": {str(int(c)): int(n) for c, n in channels.items()},
        "n_skipped": sum(v["count"] for v in skipped.values()),
        "skipped": skipped,
        "not_ingested": not_ingested,
        "n_warnings": int((validated["warning"] != "").sum()),
        "intensity_window": parts.window["window"],
        "decode_img_per_s": round(parts.rate, 1),
        "decode_workers": resolve_workers(cfg.validate.workers),
    }


def _write_outputs(
    validated: pd.DataFrame, quarantine: pd.DataFrame, summary: dict, window: dict, outputs: dict[str, Path]
) -> None:
    """validated.csv, quarantine.csv, the summary, and the optional metrics and intensity files."""
    manifest.write(validated, outputs["validated"])
    manifest.write(quarantine, outputs["quarantine"])
    manifest.write_json(summary, outputs["summary"])
    if outputs.get("metrics"):
        manifest.write_json(validation_metrics(summary), outputs["metrics"])
    if "intensity" in outputs:
        manifest.write_json(window, outputs["intensity"])


def _log_warnings(validated: pd.DataFrame) -> None:
    """Name the first images kept with a warning (e.g. an odd header), and how many there are."""
    warned = validated[validated["warning"] != ""]
    for r in warned.head(EXAMPLES).itertuples():
        log.warning("kept with a warning: %s: %s", r.path, r.warning)
    if len(warned) > EXAMPLES:
        log.warning("... %d images kept with a warning in all (validated.csv column 'warning')", len(warned))


def run(cfg: Config, inputs: dict[str, Path], outputs: dict[str, Path]) -> dict:
    """Validate inputs["manifest"]; write validated, quarantine, summary and docs (see module doc)."""
    check_keys(inputs, outputs)
    check_params(cfg)
    df, classes = read_inputs(inputs)
    parts = _partition(*check_rows(df, classes, cfg), cfg, outputs["quarantine"])
    upstream = _upstream_skips(inputs)
    gx_summary = expectations.run_suite(parts.validated, classes, cfg, outputs["docs"])
    channels = _channel_counts(parts.validated, cfg)
    summary = _summary(cfg, parts, classes, channels, upstream) | gx_summary
    _write_outputs(parts.validated, parts.quarantine, summary, parts.window, outputs)
    _log_warnings(parts.validated)
    log.info(
        "validate: %d valid, %d quarantined (%s)",
        len(parts.validated),
        len(parts.quarantine),
        {k: v for k, v in summary["reasons"].items() if v},
    )
    return {k: summary[k] for k in ("n_rows", "n_valid", "n_quarantined", "gx_success")}
