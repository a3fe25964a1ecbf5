"""The Great Expectations 1.x suite over the validated manifest, run through a checkpoint.

The suite is the contract the later stages rely on (unique paths and images, labels in the
label set, sizes in range, every class present, ...). It runs on the rows that survived the
quarantine, so a failure here is a dataset-level problem (e.g. two images claiming the same
patient and patch coordinates) and stops the pipeline with ValidationFailed.
Data Docs are built by UpdateDataDocsAction in a throwaway file context (analytics off) and copied
out (with the checkpoint result as validation_result.json) only when every expectation passes, then
made usable offline (pipeline.validation.offline_docs: vendored CSS/JS, no CDN, no tracking image).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.config import Config
from pipeline.core.errors import ValidationFailed
from pipeline.validation import offline_docs
from pipeline.validation.reasons import VALID_CHANNELS, VALID_DTYPES

log = logging.getLogger(__name__)
NAME = "medpipe_validated"


def build_expectations(df: pd.DataFrame, classes: list[str], cfg: Config) -> list[Any]:
    """The expectations for this manifest (compound patch-coordinate uniqueness only if x/y exist)."""
    import great_expectations as gx

    e = gx.expectations
    lo, hi = cfg.validate.min_side, cfg.validate.max_side
    out = [
        e.ExpectTableRowCountToBeBetween(min_value=1),
        e.ExpectColumnValuesToNotBeNull(column="path"),
        e.ExpectColumnValuesToBeUnique(column="path"),
        e.ExpectColumnValuesToMatchRegex(column="sha256", regex=r"^[0-9a-f]{64}$"),
        e.ExpectColumnValuesToBeUnique(column="sha256"),
        e.ExpectColumnValuesToBeInSet(column="label", value_set=list(range(len(classes)))),
        e.ExpectColumnValuesToBeInSet(column="class_name", value_set=list(classes)),
        e.ExpectColumnDistinctValuesToContainSet(column="class_name", value_set=list(classes)),
        e.ExpectColumnValuesToNotBeNull(column="patient_id"),
        e.ExpectColumnValuesToBeBetween(column="height", min_value=lo, max_value=hi),
        e.ExpectColumnValuesToBeBetween(column="width", min_value=lo, max_value=hi),
        e.ExpectColumnValuesToBeInSet(column="channels", value_set=list(VALID_CHANNELS)),
        e.ExpectColumnValuesToBeInSet(column="dtype", value_set=list(VALID_DTYPES)),
    ]
    if {"x", "y"} <= set(df.columns) and df["x"].notna().any():
        out.append(
            e.ExpectCompoundColumnsToBeUnique(
                column_list=["patient_id", "x", "y"], ignore_row_if="any_value_is_missing"
            )
        )
    return out


def _describe(result: Any) -> str:
    cfg = result.expectation_config
    kwargs = cfg.kwargs
    target = kwargs.get("column") or ", ".join(kwargs.get("column_list") or []) or "table"
    res = result.result or {}
    sample = res.get("partial_unexpected_list") or res.get("observed_value")
    count = res.get("unexpected_count")
    counted = f"{count} unexpected, " if count else ""
    return f"{cfg.type}({target}): {counted}e.g. {json.dumps(sample, default=str)[:200]}"


def run_suite(df: pd.DataFrame, classes: list[str], cfg: Config, docs_dir: Path) -> dict:
    """Run the suite through a checkpoint; copy Data Docs + the result JSON into docs_dir."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    start = time.perf_counter()
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.data_context.types.base import ProgressBarsConfig

    imported = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="medpipe-gx-") as tmp:
        ctx = gx.get_context(mode="file", project_root_dir=tmp)
        ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        ctx.enable_analytics(False)
        batch = ctx.data_sources.add_pandas(NAME).add_dataframe_asset(NAME)
        batch_def = batch.add_batch_definition_whole_dataframe(NAME)
        suite = ctx.suites.add(gx.ExpectationSuite(name=NAME))
        for expectation in build_expectations(df, classes, cfg):
            suite.add_expectation(expectation)
        vd = ctx.validation_definitions.add(gx.ValidationDefinition(name=NAME, data=batch_def, suite=suite))
        checkpoint = ctx.checkpoints.add(
            gx.Checkpoint(
                name=NAME,
                validation_definitions=[vd],
                actions=[UpdateDataDocsAction(name="data_docs")],
                result_format={"result_format": "SUMMARY", "partial_unexpected_count": 5},
            )
        )
        result = checkpoint.run(batch_parameters={"dataframe": df})
        if result.success:  # no partial outputs: a failing run leaves docs_dir alone
            site = Path(tmp) / "gx" / "uncommitted" / "data_docs" / "local_site"
            shutil.rmtree(docs_dir, ignore_errors=True)
            shutil.copytree(site, docs_dir)
            offline_docs.make_offline(docs_dir)  # vendored CSS/JS, no CDN, no tracking image
            described = json.dumps(result.describe_dict(), indent=2, default=str)
            (docs_dir / "validation_result.json").write_text(described)
    results = [r for vr in result.run_results.values() for r in vr.results]
    failed = [r for r in results if not r.success]
    elapsed = time.perf_counter() - start
    log.info(
        "GX: %d/%d expectations passed in %.1f s (import %.1f s)",
        len(results) - len(failed),
        len(results),
        elapsed,
        imported - start,
    )
    summary = {
        "gx_success": bool(result.success),
        "n_expectations": len(results),
        "gx_seconds": round(elapsed, 2),
    }
    if failed:
        shown = "; ".join(_describe(r) for r in failed[:3])
        more = f" (+{len(failed) - 3} more)" if len(failed) > 3 else ""
        raise ValidationFailed(f"{len(failed)} of {len(results)} data expectations failed: {shown}{more}")
    return summary
