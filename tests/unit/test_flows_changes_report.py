"""The nightly run's changes artifact, and the gate's new-data comparison in the report artifact and
on registered.html."""

from __future__ import annotations

from pathlib import Path

from helpers.changes_inputs import changes_doc

from flows.changes_report import changes_markdown, new_data_lines
from flows.run_report import markdown
from pipeline.evaluation.report_header import registered_page
from pipeline.registry import new_data

FAILED = {
    "applicable": True,
    "n": 130,
    "n_patients": 65,
    "metric": "roc_auc",
    "champion": 1.0,
    "challenger": 0.97,
    "margin": 0.02,
    "pass": False,
    "reason": "on 130 new test images roc_auc 0.9700 vs the champion's 1.0000 (-0.0300, worse than the margin 0.0200)",
}


def _compared() -> dict:
    doc = changes_doc(added=120) | {"removed": 3, "changed": 2, "relabelled": 7}
    doc["patients"] = {"then": 40, "now": 52, "new": 12, "gone": 0}
    doc["vanished_classes"] = ["neg"]
    doc["drift"] = [
        {
            "name": "intensity_mean",
            "class": "pos",
            "distance": 0.41,
            "p_value": 1e-6,
            "flag": True,
            "detail": "mean 120 -> 160",
        },
        {"name": "height", "class": "pos", "distance": 0.01, "p_value": 0.9, "flag": False, "detail": "same"},
    ]
    doc["embedding"] = {"test": "mmd_rbf_permutation", "p_value": 0.004, "flag": True}
    doc["champion_on_new"] = {
        "n": 120,
        "n_patients": 12,
        "threshold": 0.42,
        "metrics": {"roc_auc": {"value": 0.91, "ci": [0.85, 0.95]}},
    }
    return doc


def test_changes_artifact_has_counts_flags_and_the_champion_on_new_data() -> None:
    md = changes_markdown(_compared())
    assert "# What changed since the champion (m v1)" in md and "**Status:** compared" in md
    assert "| 120 | 3 | 2 | 7 | 12 | 0 |" in md
    assert "**Vanished classes:** neg" in md
    assert "**Drift flags:** 1 of 2 properties" in md and "- intensity_mean (pos): mean 120 -> 160" in md
    assert "height" not in md  # unflagged properties stay in the HTML report
    assert "FLAGGED, p = 0.004" in md
    assert "120 images (12 patients), threshold 0.42: roc_auc 0.91 [0.85, 0.95]" in md
    assert md.endswith("**Report:** reports/changes.html")


def test_changes_artifact_for_baseline_unavailable_and_failed() -> None:
    baseline = changes_markdown(changes_doc("baseline", None))
    assert "(no champion)" in baseline and "**Status:** baseline: no champion yet" in baseline
    assert "Drift flags" not in baseline
    unavailable = changes_markdown(changes_doc("unavailable"))
    assert "**Status:** unavailable: the champion's manifests are gone" in unavailable
    failed = changes_markdown({"status": "failed", "reason": "`dvc repro changes` failed (exit 1)"})
    assert "**Status:** failed: `dvc repro changes` failed" in failed and "went on without" in failed


def test_report_artifact_shows_the_new_data_comparison() -> None:
    assert "| roc_auc | 0.9700 | 1.0000 | -0.0300 |" in new_data_lines(FAILED)
    assert "fails: promotion refused" in new_data_lines(FAILED)[1]
    skipped = new_data.not_applicable("12 new test images < gate.new_data_min_images 50", "roc_auc", 0.02, 12)
    assert new_data_lines(skipped)[1].endswith(
        "not applicable (n=12): 12 new test images < gate.new_data_min_images 50 (does not block)"
    )
    record = {
        "model_name": "m",
        "version": "2",
        "gate": {"promote": False, "metric": "roc_auc", "new_data": FAILED},
    }
    md = markdown("challenger v2 not promoted: refused on new data", record, [], Path("r.html"), [], None)
    assert "On new data since the champion** (130 test images, 65 patients, margin 0.0200)" in md
    assert "new_data=" not in md  # not dumped into the gate details line


def test_registered_page_has_the_new_data_section() -> None:
    record = {
        "model_name": "m",
        "version": "2",
        "gate": {"promote": False, "reason": "refused on new data", "new_data": FAILED},
    }
    page = registered_page(record, "abc", False)
    assert 'id="new-data"' in page and "promotion refused" in page
    assert '<td class="name">-0.0300</td>' in page and "130 (65)" in page
    without = registered_page({"model_name": "m", "version": "1", "gate": {"promote": True}}, "abc", False)
    assert "new-data" not in without
