"""The MedMNIST benchmark's params type-check: its per-dataset YAML sits on top of a preset's train
section, so a preset change (e.g. an image-step budget) can make them contradict each other."""

from __future__ import annotations

import pytest
from helpers.script_module import load_script

from pipeline import config

medmnist_params = load_script("benchmarks/medmnist_params.py")


@pytest.mark.parametrize("flag", sorted(medmnist_params.GOALS))
def test_medmnist_params_load_as_measured(flag):
    raw = medmnist_params.params_for(flag, None, [])  # raises ConfigError on a contradiction
    cfg = config.from_dict(raw)
    assert cfg.train.epochs is not None and cfg.train.budget_images is None  # lengths in epochs, as logged
    assert cfg.train.ensemble == 1  # the benchmark's figures are single models, one per seed
