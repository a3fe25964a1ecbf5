"""The self-contained HTML report: sections, inline PNGs, escaping, and a headless-Chromium render."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from pipeline import config
from pipeline.evaluation import curves, report
from pipeline.evaluation.report_context import report_context, report_figures
from pipeline.evaluation.scoring import Predictions, Task, evaluate_predictions

CHROMIUM = Path("/usr/bin/chromium")
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


def _predictions(rng, n_patients: int, per_patient: int, prefix: str) -> tuple[Predictions, pd.DataFrame]:
    rows, ys, ps = [], [], []
    Path("img").mkdir(exist_ok=True)
    for p in range(n_patients):
        for j in range(per_patient):
            y = 0 if p == 0 else int(rng.random() < 0.4)
            prob = float(np.clip(0.3 * y + rng.normal(0.35, 0.2), 0.01, 0.99))
            path = f"img/{prefix}{p}_{j}.png"
            cv2.imwrite(path, np.full((12, 12, 3), int(80 + 120 * prob), np.uint8))
            rows.append(
                {
                    "path": path,
                    "label": y,
                    "patient_id": f"{prefix}{p}",
                    "x": 50 * (j % 5),
                    "y": 50 * (j // 5),
                }
            )
            ys.append(y)
            ps.append(prob)
    df = pd.DataFrame(rows)
    p = np.array(ps)
    return Predictions(np.array(ys), np.stack([1 - p, p], 1), df["patient_id"].to_numpy()), df


def render_synthetic(root: Path, classes=("benign", "malignant"), history: bool = True) -> tuple[str, dict]:
    """A full report from synthetic predictions (no model), written under root (the cwd)."""
    rng = np.random.default_rng(3)
    cfg = config.from_dict({"evaluate": {"bootstrap": 30}})
    task = Task(list(classes), 1)
    val, _ = _predictions(rng, 5, 20, "v")
    test, test_df = _predictions(rng, 5, 25, "t")
    splits = root / "splits"
    splits.mkdir()
    test_df.to_csv(splits / "test.csv", index=False)
    result = evaluate_predictions(task, val, test, cfg.evaluate)
    result["test_manifest_sha256"] = "ab" * 32
    tables = curves.plot_tables(test.y, test.proba, task.classes, 1, result["threshold"])
    hist = pd.DataFrame(
        {
            "epoch": [1, 2, 3],
            "loss": [0.9, 0.6, 0.5],
            "val_loss": [0.95, 0.7, 0.65],
            "accuracy": [0.5, 0.7, 0.8],
            "val_accuracy": [0.5, 0.65, 0.7],
        }
    )
    figs = report_figures(task, result, test, test_df, tables, hist if history else None, 3)
    label_map = {
        "classes": list(classes),
        "positive": classes[1],
        "image_size": 12,
        "channels": 3,
        "format": "idc",
    }
    context = report_context(cfg, task, label_map, {"epochs_run": 3}, result, splits, figs)
    return report.render(context), result


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


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed (apt-get install chromium)"
)
def test_report_renders_its_plots_in_headless_chromium(in_tmp):
    html, _ = render_synthetic(in_tmp)
    page = in_tmp / "report.html"
    page.write_text(html, encoding="utf-8")
    shot = in_tmp / "report.png"
    cmd = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={in_tmp / 'profile'}",
        f"--screenshot={shot}",
        "--window-size=1200,3000",
        page.as_uri(),
    ]
    subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    assert shot.is_file(), "chromium wrote no screenshot"
    img = cv2.imread(str(shot))
    assert img.shape[:2] == (3000, 1200)
    # matplotlib's default line colour (tab:blue, BGR 180,119,31) only appears if the plots rendered
    blue = np.all(np.abs(img.astype(int) - [180, 119, 31]) < 30, axis=2)
    assert blue.sum() > 2000
