"""`dvc plots show` renders without network: the project's html_template inlines vega/vega-lite/vega-embed."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXTERNAL = re.compile(r"""<(script|link|img|iframe)\b[^>]*\b(src|href)\s*=\s*["']?(https?:)?//""", re.I)


def test_dvc_plots_show_page_references_no_remote_script(tmp_path: Path) -> None:
    shutil.copytree(ROOT / ".dvc", tmp_path / ".dvc", ignore=shutil.ignore_patterns("tmp", "cache"))
    (tmp_path / "history.csv").write_text("epoch,loss,val_loss\n1,0.7,0.8\n2,0.5,0.6\n")
    (tmp_path / "dvc.yaml").write_text(
        "plots:\n  - Loss:\n      x: epoch\n      y:\n        history.csv: [loss, val_loss]\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "dvc", "plots", "show", "-o", "out"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"DVC_NO_ANALYTICS": "1", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    html = (tmp_path / "out" / "index.html").read_text()
    assert "vegaEmbed(" in html and '"epoch"' in html  # the plot is there ...
    assert html.count("<script>") >= 3 and "vega-embed 6.18.2" in html  # ... with inlined libraries
    assert not EXTERNAL.findall(html), EXTERNAL.findall(html)[:3]
    assert "cdn.jsdelivr.net" not in html
