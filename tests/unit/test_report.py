"""The self-contained HTML report: sections, inline PNGs, escaping (the browser render: tests/integration)."""

from __future__ import annotations

import os
import re
import subprocess

import pytest
from helpers.report_inputs import render_synthetic

from pipeline.evaluation import report

SECTIONS = (
    "Headline metrics",
    "ROC and precision-recall",
    "Confusion matrix",
    "Calibration",
    "Training curves",
    "Most confident errors",
    "Slide heat map",
    "Patient-level metrics",
    "Model card",
    "Intended use",
    "not a diagnostic device",
    "Limitations",
    "Dataset shift",
)


def test_report_is_self_contained_with_all_sections(in_tmp):
    html, result = render_synthetic(in_tmp)
    assert html.count('src="data:image/png;base64,') == 7
    assert "<script" not in html and "http://" not in html and "https://" not in html
    for section in SECTIONS:
        assert section in html, section
    assert "synthetic" in html.lower()  # format idc + data.source sample
    assert f"{result['roc_auc']:.3f}" in html  # headline value shown
    lo, hi = result["ci"]["roc_auc"]
    assert f"{lo:.3f} - {hi:.3f}" in html  # with its CI


def test_report_header_names_model_revision_params_and_time(in_tmp):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_COMMITTER_NAME": "t"}
    env |= {"GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_EMAIL": "t@x"}
    (in_tmp / "params.yaml").write_text("train: {}\n")
    for args in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "x"]):
        subprocess.run(args, cwd=in_tmp, check=True, env=env, capture_output=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=in_tmp, capture_output=True, text=True).stdout
    html, _ = render_synthetic(in_tmp)
    header = html[html.index('<table id="header">') : html.index("</table>")]
    assert "medpipe-idc" in header and "baseline_cnn" in header
    assert head.strip() in header and "uncommitted" not in header
    assert 'href="registered.html"' in header  # version + gate decision: written by the register stage
    assert re.search(r"evaluated at</th><td class=\"name\">20\d\d-\d\d-\d\d \d\d:\d\d UTC", header)
    assert re.search(r"params sha256</th><td class=\"name\"><code>[0-9a-f]{16}</code>", header)


def test_report_escapes_names_and_omits_missing_history(in_tmp):
    html, _ = render_synthetic(in_tmp, classes=("benign", "<script>alert(1)</script>"), history=False)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html
    assert "No training history" in html
    assert html.count('src="data:image/png;base64,') == 6


def test_render_refuses_a_report_without_its_plots(in_tmp):
    with pytest.raises(ValueError, match="roc"):
        report.render({"figures": {"pr": "x", "confusion": "x", "calibration": "x"}})
