"""A cohort too small to split by patient, as a user meets it: the default `dvc repro` stops at split
with one line naming split.allow_image_level; with it set, the same repro goes on and the warning
stands in report.html (under the test-set line and twice in the model card), in registered.html and
registered.json. One project, two repros."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from helpers.git_dvc_project import GIT_ENV, make_git_dvc_project

from pipeline.config.split_level import IMAGE_LEVEL_WARNING

SAID = "images of the same patient may be in train and test"


def _repro(work: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dvc", "repro"], cwd=work, env=env, capture_output=True, text=True, timeout=900
    )


def _set(work: Path, section: str, values: dict) -> None:
    params = yaml.safe_load((work / "params.yaml").read_text())
    params[section].update(values)
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_small_cohort_stops_then_splits_by_image_with_the_warning_everywhere(tmp_path):
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env.pop("MLFLOW_TRACKING_URI", None)
    env.update(GIT_ENV)
    work = make_git_dvc_project(tmp_path / "proj", "e2e-image-level", env)
    _set(work, "data", {"sample": {"patients": 2, "patches_per_patient": 60, "seed": 3}})
    _set(work, "train", {"epochs": 1})

    stopped = _repro(work, env)
    assert stopped.returncode != 0
    line = next(ln for ln in stopped.stderr.splitlines() if ln.startswith("medpipe: error:"))
    assert "only 2 patient group(s)" in line and "split.allow_image_level: true" in line
    assert not (work / "data/splits").exists()

    _set(work, "split", {"allow_image_level": True})
    done = _repro(work, env)
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert IMAGE_LEVEL_WARNING in done.stdout + done.stderr  # the split stage's own warning line
    split = json.loads((work / "reports/split.json").read_text())
    assert split["image_level"] is True and split["leak_check"]["shared_patient_id"] == 2
    report = (work / "reports/report.html").read_text()
    assert report.count(SAID) == 3 and 'id="image-level"' in report
    assert 'id="patients"' not in report  # no patient-level figures for an image-level split
    registered = (work / "reports/registered.html").read_text()
    assert SAID in registered and "<b>Warning:</b>" in registered
    record = json.loads((work / "reports/registered.json").read_text())
    assert record["image_level_warning"] == IMAGE_LEVEL_WARNING and record["model_name"] == "e2e-image-level"
