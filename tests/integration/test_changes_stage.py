"""The changes stage against a registered champion with a recorded lineage (tests/helpers/
changes_project): the bad inputs first (nothing new, no champion, another class set, the cache
objects gone), then a night with a new patient, a relabelled batch and a gamma-shifted batch."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import changes_project
from helpers.changes_project import STAGE_IN, STAGE_OUT
from helpers.registered_champion import NAME, settings

from pipeline.changes import champion as champions
from pipeline.changes.compute import Inputs, compute
from pipeline.cli.commands import main
from pipeline.evaluation.predictions import load_model
from pipeline.stages import changes
from pipeline.training.predict import predict_proba

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    yield from changes_project.build(tmp_path_factory)


@pytest.fixture(scope="module")
def night(project):
    root, _ = project
    expected = changes_project.change_data(root)
    summary = changes.run(settings(), STAGE_IN, STAGE_OUT)
    return root, expected, summary


def _doc(root: Path) -> dict:
    return json.loads((root / STAGE_OUT["summary"]).read_text())


def test_nothing_new_is_compared_without_loading_the_model(project, monkeypatch):
    root, record = project
    monkeypatch.setattr(champions, "load_model", lambda champ: pytest.fail("model loaded on an empty night"))
    changes.run(settings(), STAGE_IN, STAGE_OUT)
    doc = _doc(root)
    assert doc["status"] == "compared", doc["reason"]
    assert doc["champion"]["version"] == str(record["version"])
    assert [doc[k] for k in ("added", "removed", "changed", "relabelled", "new_images")] == [0, 0, 0, 0, 0]
    assert doc["champion_on_new"] is None and doc["embedding"] is None
    table = pd.read_csv(root / STAGE_OUT["dir"] / "champion_predictions.csv")
    assert len(table) == 0 and list(table.columns)[-2:] == ["p_non_idc", "p_idc"]


def test_no_champion_is_a_baseline_with_the_current_profile(project):
    root, _ = project
    result = compute(settings(registry={"model_name": "never-registered"}), Inputs(**STAGE_IN))
    assert result.doc["status"] == "baseline" and result.doc["champion"] is None
    assert result.doc["profile"]["images"] == len(pd.read_csv(root / STAGE_IN["validated"]))


def test_a_champion_of_another_class_set_is_unavailable_in_one_line(project, tmp_path):
    other = tmp_path / "labels.json"
    other.write_text(
        json.dumps({"format": "idc", "classes": ["normal", "bacteria", "virus"], "positive": None})
    )
    result = compute(settings(), Inputs(**{**STAGE_IN, "labels": other}))
    assert result.doc["status"] == "unavailable"
    assert "classes" in result.doc["reason"] and "\n" not in result.doc["reason"]


def test_the_champions_cache_objects_gone_is_unavailable_and_the_page_says_so(project, tmp_path):
    root, _ = project
    cache = root / ".dvc" / "cache"
    cache.rename(tmp_path / "cache")
    try:
        changes.run(settings(), STAGE_IN, STAGE_OUT)
    finally:
        (tmp_path / "cache").rename(cache)
    doc = _doc(root)
    assert doc["status"] == "unavailable" and "DVC cache" in doc["reason"]
    first = (root / STAGE_OUT["report"]).read_text().split('id="classes"')[0]
    assert "Comparison unavailable" in first and "DVC cache" in first


def test_a_champion_whose_recorded_lineage_is_gone_is_unavailable(project, tmp_path):
    root, _ = project
    stored = [
        p for p in root.rglob("*") if p.name == "lineage.json" or p.as_posix().endswith("reproduce/dvc.lock")
    ]
    assert len(stored) == 2, stored  # what register recorded: both carry the data hashes
    for i, path in enumerate(stored):
        path.rename(tmp_path / str(i))
    try:
        result = compute(settings(), Inputs(**STAGE_IN))
    finally:
        for i, path in enumerate(stored):
            (tmp_path / str(i)).rename(path)
    assert result.doc["status"] == "unavailable" and "lineage" in result.doc["reason"]


def test_a_night_is_counted_flagged_and_the_champion_scored_on_the_new_images(night):
    root, expected, _ = night
    doc = _doc(root)
    assert doc["status"] == "compared", doc["reason"]
    for key in ("added", "removed", "changed", "relabelled"):
        assert doc[key] == expected[key], key
    assert doc["patients"]["new"] == expected["new_patients"]
    assert doc["relabels"] == [{"from": "idc", "to": "non_idc", "n": expected["relabelled"]}]
    flagged = {d["name"] for d in doc["drift"] if d["flag"]}
    assert "intensity_mean" in flagged, doc["drift"]
    assert doc["new_images"] == expected["new"]
    assert doc["embedding"]["n_new"] == expected["new"] and doc["embedding"]["flag"] is True
    scored = doc["champion_on_new"]
    assert scored["n"] == expected["new"] and scored["n_patients"] == expected["new_patients_scored"]
    assert scored["threshold"] == doc["champion"]["threshold"]
    table = pd.read_csv(root / STAGE_OUT["dir"] / "champion_predictions.csv")
    assert len(table) == expected["new"] and table["split"].value_counts().to_dict() == {"test": 12, "val": 1}
    # the evaluate/serving path (files decoded at the champion's size, the same model) agrees
    direct = predict_proba(load_model(root / "models" / "model.keras"), table, 8, 3)
    assert np.allclose(table[["p_non_idc", "p_idc"]].to_numpy(), direct, atol=1e-5)
    headline = json.loads((root / STAGE_OUT["headline"]).read_text())
    assert len(headline) <= 10 and headline["added"] == expected["added"] and headline["drift_flags"] >= 2
    first = (root / STAGE_OUT["report"]).read_text().split('id="classes"')[0]
    assert "Relabelled batch" in first and f"<b>{expected['relabelled']}</b> image(s)" in first
    assert "Flag:" in first and "intensity_mean" in first


def test_the_outputs_are_byte_deterministic(night):
    root = night[0]
    before = {
        p: (root / p).read_bytes() for p in (STAGE_OUT["summary"], STAGE_OUT["report"], STAGE_OUT["headline"])
    }
    before["csv"] = (root / STAGE_OUT["dir"] / "champion_predictions.csv").read_bytes()
    changes.run(settings(), STAGE_IN, STAGE_OUT)
    after = {p: (root / p).read_bytes() for p in before if p != "csv"}
    after["csv"] = (root / STAGE_OUT["dir"] / "champion_predictions.csv").read_bytes()
    assert after == before


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed (apt-get install chromium)"
)
def test_changes_html_renders_its_plots_in_headless_chromium(night, tmp_path):
    page = tmp_path / "changes.html"
    shutil.copyfile(night[0] / STAGE_OUT["report"], page)
    shot = tmp_path / "changes.png"
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    cmd += ["--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}"]
    cmd += [f"--screenshot={shot}", "--window-size=1200,3000", page.as_uri()]
    subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    assert shot.is_file(), "chromium wrote no screenshot"
    img = cv2.imread(str(shot)).astype(int)
    # the "new" histograms' orange (#e07020 at alpha 0.55 on white: BGR 132,176,238) only appears
    # if the inline PNGs rendered
    orange = np.all(np.abs(img - [132, 176, 238]) < 20, axis=2)
    assert orange.sum() > 500
    # the first screen's flag boxes (#fdecea) are there too
    pink = np.all(np.abs(img - [234, 236, 253]) < 6, axis=2)
    assert pink.sum() > 2000


def test_medpipe_changes_json_prints_what_the_stage_wrote(night, capsys):
    root = night[0]
    shutil.copyfile(REPO / "dvc.yaml", root / "dvc.yaml")  # the stage's paths come from dvc.yaml
    params = {"evaluate": {"bootstrap": 20}, "gate": {"min": {}}, "registry": {"model_name": NAME}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    assert main(["changes", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == _doc(root)
    assert main(["changes"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("status: compared") and "relabelled: 3 from idc to non_idc" in text
