"""The typed params loader: defaults, strictness and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline import config
from pipeline.config.types import Range
from pipeline.core.errors import ConfigError

PROJECT_PARAMS = Path(__file__).resolve().parents[2] / "params.yaml"


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
        ({"data": {"format": "nifti"}}, "params: 'data.format' is 'nifti'; expected one of"),
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


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"train": {"batch_size": 0}},
            "params: 'train.batch_size' is 0; accepted range: 1 <= value <= 65536",
        ),
        ({"train": {"epochs": 0}}, "params: 'train.epochs' is 0; accepted range: 1 <= value <= 100_000"),
        ({"train": {"dropout": 1.5}}, "params: 'train.dropout' is 1.5; accepted range: 0 <= value < 1"),
        ({"train": {"dropout": 1}}, "params: 'train.dropout' is 1; accepted range: 0 <= value < 1"),
        (
            {"train": {"learning_rate": -0.01}},
            "params: 'train.learning_rate' is -0.01; accepted range: 0 < value <= 1",
        ),
        (
            {"train": {"learning_rate": 0}},
            "params: 'train.learning_rate' is 0; accepted range: 0 < value <= 1",
        ),
        ({"train": {"learning_rate": float("nan")}}, "params: 'train.learning_rate' is nan; accepted range:"),
        (
            {"train": {"fine_tune_learning_rate": float("inf")}},
            "params: 'train.fine_tune_learning_rate' is inf",
        ),
        (
            {"train": {"reduce_lr_factor": 1.0}},
            "params: 'train.reduce_lr_factor' is 1.0; accepted range: 0 < value < 1",
        ),
        (
            {"train": {"label_smoothing": 1.0}},
            "params: 'train.label_smoothing' is 1.0; accepted range: 0 <= value < 1",
        ),
        ({"train": {"seed": -1}}, "params: 'train.seed' is -1; accepted range: 0 <= value <= 4_294_967_295"),
        (
            {"train": {"augment": {"zoom": 1.2}}},
            "params: 'train.augment.zoom' is 1.2; accepted range: 0 <= value < 1",
        ),
        (
            {"preprocess": {"image_size": 0}},
            "params: 'preprocess.image_size' is 0; accepted range: 8 <= value <= 2048",
        ),
        (
            {"preprocess": {"image_size": 100000}},
            "params: 'preprocess.image_size' is 100000; accepted range: 8 <=",
        ),
        (
            {"data": {"sample": {"image_size": 4}}},
            "params: 'data.sample.image_size' is 4; accepted range: 8 <=",
        ),
        ({"data": {"s3_workers": 0}}, "params: 'data.s3_workers' is 0; accepted range: 1 <= value <= 512"),
        (
            {"data": {"max_archive_members": 0}},
            "params: 'data.max_archive_members' is 0; accepted range: value >= 1",
        ),
        (
            {"data": {"magnifications": [40, -100]}},
            "params: 'data.magnifications[1]' is -100; accepted range: value >= 1",
        ),
        (
            {"validate": {"max_quarantine_fraction": -0.1}},
            "params: 'validate.max_quarantine_fraction' is -0.1;",
        ),
        (
            {"validate": {"workers": -1}},
            "params: 'validate.workers' is -1; accepted range: 0 <= value <= 512",
        ),
        ({"validate": {"min_side": 0}}, "params: 'validate.min_side' is 0; accepted range: value >= 1"),
        ({"split": {"val_fraction": 0}}, "params: 'split.val_fraction' is 0; accepted range: 0 < value < 1"),
        (
            {"split": {"test_fraction": 1.0}},
            "params: 'split.test_fraction' is 1.0; accepted range: 0 < value < 1",
        ),
        (
            {"balance": {"augment": {"blur_kernels": [1, 4]}}},
            "params: 'balance.augment.blur_kernels[1]' is 4; accepted range: 1 <= value <= 99, odd",
        ),
        (
            {"balance": {"augment": {"rotate_deg": 400}}},
            "params: 'balance.augment.rotate_deg' is 400; accepted range: 0 <= value <= 180",
        ),
        (
            {"evaluate": {"bootstrap": -1}},
            "params: 'evaluate.bootstrap' is -1; accepted range: 0 <= value <= 100_000",
        ),
        (
            {"evaluate": {"target_sensitivity": 0}},
            "params: 'evaluate.target_sensitivity' is 0; accepted range: 0 < value <= 1",
        ),
        ({"gate": {"max_drop": 2}}, "params: 'gate.max_drop' is 2; accepted range: 0 <= value <= 1"),
    ],
)
def test_values_out_of_range_give_one_line_errors_with_the_accepted_range(raw, message):
    with pytest.raises(ConfigError) as err:
        config.from_dict(raw)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"split": {"val_fraction": 0.5, "test_fraction": 0.5}},
            "params: split.val_fraction + split.test_fraction is 1; accepted range: value < 1",
        ),
        (
            {"validate": {"min_side": 64, "max_side": 32}},
            "params: validate.min_side (64) is above validate.max_side (32)",
        ),
        (
            {"preprocess": {"image_size": 2048}, "train": {"batch_size": 128}},
            "params: train.batch_size 128 x preprocess.image_size 2048^2 x 3 channels is 6.0 GiB per float32 "
            "input batch; accepted: <= 4 GiB",
        ),
        (
            {"train": {"weights": "backbone.txt"}},
            "params: 'train.weights' is 'backbone.txt'; accepted: imagenet, none or the path of a Keras .weights.h5",
        ),
    ],
)
def test_keys_that_cannot_work_together(raw, message):
    with pytest.raises(ConfigError) as err:
        config.from_dict(raw)
    assert str(err.value).startswith(message)


def test_weights_file_that_is_not_hdf5_is_refused_at_load(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("notes.weights.h5").write_text("these are my notes, not weights\n")
    with pytest.raises(ConfigError, match=r"^params: 'train.weights' file notes.weights.h5 is not an HDF5"):
        config.from_dict({"train": {"weights": "notes.weights.h5"}})
    Path("real.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    assert (
        config.from_dict({"train": {"model": "mobilenetv2", "weights": "real.weights.h5"}}).train.weights
        == "real.weights.h5"
    )
    # a file that is not there yet is the loader's business at train time (pipeline.models)
    assert (
        config.from_dict({"train": {"model": "mobilenetv2", "weights": "later.weights.h5"}}).train.weights
        == "later.weights.h5"
    )


def test_boundaries_are_accepted():
    cfg = config.from_dict(
        {
            "train": {"batch_size": 1, "epochs": 1, "dropout": 0.0, "learning_rate": 1, "seed": 2**32 - 1},
            "preprocess": {"image_size": 8},
            "split": {"val_fraction": 0.49, "test_fraction": 0.5},
            "validate": {"max_quarantine_fraction": 1, "workers": 0},
            "evaluate": {"bootstrap": 0},
        }
    )
    assert cfg.train.batch_size == 1 and cfg.preprocess.image_size == 8


def test_every_numeric_key_declares_its_range():
    """A new numeric key without a Range would let an impossible value through: declare one."""
    import dataclasses
    import typing

    def walk(cls, prefix=""):
        hints = typing.get_type_hints(cls, include_extras=True)
        for f in dataclasses.fields(cls):
            tp = hints[f.name]
            if dataclasses.is_dataclass(tp):
                yield from walk(tp, f"{prefix}{f.name}.")
                continue
            if typing.get_origin(tp) is tuple:
                tp = typing.get_args(tp)[0]
            if typing.get_origin(tp) in (typing.Union, __import__("types").UnionType):
                tp = next(a for a in typing.get_args(tp) if a is not type(None))
            base = typing.get_args(tp)[0] if typing.get_origin(tp) is typing.Annotated else tp
            if base in (int, float):
                has = typing.get_origin(tp) is typing.Annotated and any(
                    isinstance(m, Range) for m in tp.__metadata__
                )
                yield f"{prefix}{f.name}", has

    missing = [key for key, has in walk(config.Config) if not has]
    assert missing == []


def test_every_stage_refuses_an_impossible_value_before_touching_data(tmp_path, monkeypatch, capsys):
    """`medpipe stage ingest` with train.batch_size 0: exit 2, one stderr line, nothing written."""
    from pipeline.cli import main

    monkeypatch.chdir(tmp_path)
    raw = yaml.safe_load(PROJECT_PARAMS.read_text())
    raw["train"]["batch_size"] = 0
    Path("params.yaml").write_text(yaml.safe_dump(raw))
    rc = main(["stage", "ingest", "-o", "raw=data/raw", "-o", "manifest=data/manifests/raw.csv"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err == "medpipe: error: params: 'train.batch_size' is 0; accepted range: 1 <= value <= 65536\n"
    assert not Path("data").exists()
