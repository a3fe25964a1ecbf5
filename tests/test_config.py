"""The typed params loader: defaults, strictness and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline import config
from pipeline.errors import ConfigError

PROJECT_PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"


def test_project_params_load_and_match_defaults_where_documented():
    cfg = config.load(PROJECT_PARAMS)
    assert cfg.data.source == "sample"
    assert cfg.data.format == "idc"
    assert cfg.data.magnifications == (40, 100, 200, 400)
    assert cfg.balance.augment.blur_kernels == (1, 3)
    assert cfg.train.dropout == pytest.approx(0.3)


def test_every_params_key_is_known_to_the_loader():
    """params.yaml and the dataclasses must not drift apart: a full round trip is lossless."""
    raw = yaml.safe_load(PROJECT_PARAMS.read_text())
    as_dict = config.to_dict(config.from_dict(raw))

    def keys(d, prefix=""):
        for k, v in d.items():
            yield prefix + k
            if isinstance(v, dict):
                yield from keys(v, prefix + k + ".")

    assert set(keys(raw)) <= set(keys(as_dict))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"train": {"epoch": 3}}, "params: unknown key 'train.epoch'; did you mean 'epochs'?"),
        ({"trian": {}}, "params: unknown key 'trian'; did you mean 'train'?"),
        ({"data": {"format": "dicom"}}, "params: 'data.format' is 'dicom'; expected one of"),
        ({"train": {"epochs": "ten"}}, "params: 'train.epochs' must be an integer, got 'ten'"),
        ({"train": {"epochs": True}}, "params: 'train.epochs' must be an integer, got True"),
        ({"split": {"seed": 1.5}}, "params: 'split.seed' must be an integer, got 1.5"),
        ({"evaluate": {"tta": "yes"}}, "params: 'evaluate.tta' must be true or false, got 'yes'"),
        ({"data": {"sample": 3}}, "params: 'data.sample' must be a mapping, got 3"),
        ({"data": {"magnifications": 40}}, "params: 'data.magnifications' must be a list, got 40"),
        ({"train": {"learning_rate": "fast"}}, "params: 'train.learning_rate' must be a number, got 'fast'"),
    ],
)
def test_bad_params_give_one_line_errors(raw, message):
    with pytest.raises(ConfigError) as err:
        config.from_dict(raw)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_ints_are_accepted_for_floats_and_none_for_optionals():
    cfg = config.from_dict({"train": {"learning_rate": 1}, "data": {"patient_regex": None}})
    assert cfg.train.learning_rate == 1.0 and isinstance(cfg.train.learning_rate, float)
    assert cfg.data.patient_regex is None


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        config.load(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        config.load(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        config.load(scalar)
