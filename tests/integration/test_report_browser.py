"""report.html rendered by a real headless Chromium: the inline plots show up as pixels."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.report_inputs import render_synthetic

CHROMIUM = Path("/usr/bin/chromium")


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
