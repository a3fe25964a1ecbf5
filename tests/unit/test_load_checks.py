"""Cross-key checks that run at load (before ingest): each recipe that cannot train is one line, and
every preset runs offline on CPU as shipped."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline import config
from pipeline.cli import main
from pipeline.config import presets
from pipeline.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("train", "preprocess", "message"),
    [
        (
            {"model": "densenet201", "weights": "none", "fine_tune_epochs": 10},
            {},
            "params: train.fine_tune_epochs is 10 but nothing is frozen (train.weights is none)",
        ),
        (
            {"model": "small_resnet", "fine_tune_epochs": 2},
            {},
            "params: train.fine_tune_epochs is 2 but nothing is frozen (small_resnet has no backbone)",
        ),
        (
            {"model": "baseline_cnn", "weights": "imagenet"},
            {},
            "params: train.weights is 'imagenet' but train.model baseline_cnn trains from scratch",
        ),
        (
            {"model": "mobilenetv2"},
            {"image_size": 28},
            "params: preprocess.image_size is 28; train.model mobilenetv2",
        ),
        (
            {"model": "small_resnet", "width": 2},
            {},
            "params: train.width is 2; small_resnet needs at least 4",
        ),
        ({"weight_decay": 0.01}, {}, "params: train.weight_decay is 0.01 but only train.optimizer: adamw"),
        ({"warmup_epochs": 1}, {}, "params: train.warmup_epochs is only used by train.lr_schedule: cosine"),
        (
            {"lr_schedule": "cosine", "warmup_epochs": 12, "epochs": 12},
            {},
            "params: train.warmup_epochs (12) must be below the epochs of each phase (train.epochs 12)",
        ),
        (
            {
                "model": "mobilenetv2",
                "weights": "imagenet",
                "lr_schedule": "cosine",
                "warmup_epochs": 2,
                "epochs": 5,
                "fine_tune_epochs": 2,
            },
            {"image_size": 32},
            "params: train.warmup_epochs (2) must be below the epochs of each phase (train.epochs 5, "
            "train.fine_tune_epochs 2)",
        ),
        (
            {"augment": {"rotate_deg": 180}},
            {},
            "params: train.augment.rotate_deg is 180.0; expected 0 <= rotate_deg < 180",
        ),
        (
            {"augment": {"translate": 0.5}},
            {},
            "params: train.augment.translate is 0.5; expected 0 <= translate < 0.5",
        ),
    ],
)
def test_train_combinations_fail_at_load_in_one_line(train, preprocess, message):
    with pytest.raises(ConfigError) as err:
        config.from_dict({"train": train, "preprocess": preprocess})
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_working_combinations_load():
    ok = [
        {"model": "densenet201", "weights": "imagenet", "fine_tune_epochs": 10},
        {"model": "small_resnet", "width": 4, "optimizer": "adamw", "weight_decay": 1e-4},
        {"lr_schedule": "cosine", "warmup_epochs": 2, "epochs": 3},
        {"augment": {"rotate_deg": 179.0, "translate": 0.49}},
    ]
    for train in ok:
        assert config.from_dict({"train": train}).train.model == train.get("model", "baseline_cnn")


def test_fine_tune_without_pretrained_weights_stops_ingest_before_data(in_tmp, capsys):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"].update(model="densenet201", weights="none", fine_tune_epochs=10)
    Path("params.yaml").write_text(yaml.safe_dump(params))
    code = main(["stage", "ingest", "-o", "raw=data/raw", "-o", "manifest=data/manifests/raw.csv"])
    err = capsys.readouterr().err
    assert code != 0
    assert "train.fine_tune_epochs is 10 but nothing is frozen" in err
    assert not Path("data").exists()


@pytest.mark.parametrize("name", sorted(presets.available()))
def test_every_preset_runs_offline_on_cpu_as_shipped(name):
    text = (ROOT / "params.yaml").read_text()
    new, _ = presets.apply_text(text, presets.load(name), name)
    cfg = config.from_dict(yaml.safe_load(new))
    assert cfg.train.weights == "none"  # imagenet is a download; a weights file a manual copy
    assert cfg.train.model in ("baseline_cnn", "small_resnet")  # the applications need a GPU to train in time
    assert cfg.train.fine_tune_epochs == 0
