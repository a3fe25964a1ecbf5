"""The embedded synthetic IDC-layout sample: layout, determinism, statistics, class signal."""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from dataclasses import replace

import cv2
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from pipeline.config import SampleConfig
from pipeline.core.errors import ConfigError
from pipeline.sources import STATE_NAME, sample

IDC_NAME = re.compile(r"^(\d{5})/([01])/\1_idx5_x(\d+)_y(\d+)_class\2\.png$")
SMALL = SampleConfig(patients=6, patches_per_patient=30, seed=5)


def _digest(cfg: SampleConfig) -> list[tuple[str, str]]:
    return [(p.relpath, hashlib.sha256(png).hexdigest()) for p, png in sample.generate(cfg)]


def test_generation_is_byte_identical_run_to_run():
    first, second = _digest(SMALL), _digest(SMALL)
    assert first == second
    assert len({sha for _, sha in first}) == len(first)  # every patch is a distinct image
    assert _digest(replace(SMALL, seed=6)) != first


def test_written_files_match_generated_bytes(tmp_path):
    paths = sample.write(SMALL, tmp_path)
    expected = dict(_digest(SMALL))
    got = {p.relative_to(tmp_path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}
    assert got == expected


def test_layout_is_kaggle_idc():
    patches = sample.layout(SampleConfig())
    cells = defaultdict(set)
    for p in patches:
        m = IDC_NAME.match(p.relpath)
        assert m, p.relpath
        assert (p.x - 1) % 50 == 0 and (p.y - 1) % 50 == 0
        cells[p.patient_id].add(((p.x - 1) // 50, (p.y - 1) // 50))
    assert len(cells) == 24
    assert 0.9 * 24 * 150 <= len(patches) <= 1.1 * 24 * 150
    assert sum(len(c) for c in cells.values()) == len(patches)  # no two patches on one tile
    for tiles in cells.values():  # tissue is one blob: almost every tile touches another
        touching = sum(
            any((x + dx, y + dy) in tiles for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1))) for x, y in tiles
        )
        assert touching / len(tiles) > 0.95


def test_positive_rate_overall_and_per_patient():
    patches = sample.layout(SampleConfig())
    labels = np.array([p.label for p in patches])
    assert abs(labels.mean() - 0.28) < 0.03
    per_patient = defaultdict(list)
    for p in patches:
        per_patient[p.patient_id].append(p.label)
    rates = np.array([np.mean(v) for v in per_patient.values()])
    assert rates.std() > 0.1 and rates.max() - rates.min() > 0.4


def test_positives_are_spatially_clustered():
    patches = sample.layout(SampleConfig())
    label = {(p.patient_id, p.x, p.y): p.label for p in patches}
    same, total = 0, 0
    for p in patches:
        if not p.label:
            continue
        for dx, dy in ((50, 0), (-50, 0), (0, 50), (0, -50)):
            n = label.get((p.patient_id, p.x + dx, p.y + dy))
            if n is not None:
                same, total = same + n, total + 1
    assert same / total > 0.75  # a positive's neighbours are mostly positive (base rate 0.28)


def _mean_blob_area(gray: np.ndarray) -> float:
    """Mean area of dark connected blobs (nuclei) in a grayscale patch."""
    dark = (gray < np.median(gray) - 25).astype(np.uint8)
    _, _, stats, _ = cv2.connectedComponentsWithStats(dark)
    areas = stats[1:, cv2.CC_STAT_AREA]
    areas = areas[areas >= 3]
    return float(areas.mean()) if len(areas) else 0.0


def test_class_signal_is_in_nuclei_not_in_global_brightness():
    items = list(sample.generate(SampleConfig(patients=8, patches_per_patient=60, seed=1)))
    y = np.array([p.label for p, _ in items])
    gray = [cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_GRAYSCALE) for _, b in items]
    first = cv2.imdecode(np.frombuffer(items[0][1], np.uint8), cv2.IMREAD_UNCHANGED)
    assert first.shape == (50, 50, 3) and first.dtype == np.uint8
    assert roc_auc_score(y, [_mean_blob_area(g) for g in gray]) > 0.85  # larger nuclei in positives
    assert roc_auc_score(y, [-g.mean() for g in gray]) < 0.9  # but no trivial brightness cut


def test_image_size_is_honoured():
    patch, png = next(sample.generate(replace(SMALL, image_size=32)))
    assert cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR).shape == (32, 32, 3)
    assert (patch.x - 1) % 32 == 0


def test_sync_sample_is_incremental(tmp_path):
    raw = tmp_path / "raw"
    first = sample.sync_sample(SMALL, raw)
    assert first.copied == len(first.files) > 0 and (raw / STATE_NAME).is_file()
    mtimes = {rel: (raw / rel).stat().st_mtime_ns for rel in first.files}
    again = sample.sync_sample(SMALL, raw)
    assert (again.copied, again.deleted, again.unchanged) == (0, 0, len(first.files))
    assert {rel: (raw / rel).stat().st_mtime_ns for rel in first.files} == mtimes
    other = sample.sync_sample(replace(SMALL, patients=4), raw)
    assert other.deleted > 0 and set(other.files) == {
        p.relpath for p in sample.layout(replace(SMALL, patients=4))
    }
    on_disk = {p.relative_to(raw).as_posix() for p in raw.rglob("*") if p.is_file()}
    assert on_disk == set(other.files) | {STATE_NAME}


def test_bad_sample_params_are_one_line_errors():
    with pytest.raises(ConfigError, match="positive_fraction"):
        sample.layout(replace(SMALL, positive_fraction=1.5))
