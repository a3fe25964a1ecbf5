"""Presets: every preset applies to the repo's params.yaml, rewriting only its keys, keeping comments."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline import config
from pipeline.cli import main
from pipeline.config import presets
from pipeline.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = {"breakhis-densenet201", "idc", "kermany-3class", "kermany-binary", "tb"}


def test_every_preset_is_listed_with_one_line():
    shown = presets.available()
    assert set(shown) == EXPECTED
    assert all(line and "\n" not in line for line in shown.values())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_preset_rewrites_only_its_keys_and_keeps_comments(name):
    text = (ROOT / "params.yaml").read_text()
    new, _ = presets.apply_text(text, presets.load(name), name)
    preset = presets.flatten(presets.load(name))
    before, after = presets.flatten(yaml.safe_load(text)), presets.flatten(yaml.safe_load(new))
    assert {k: after[k] for k in preset} == preset
    assert {k: v for k, v in after.items() if k not in preset} == {
        k: v for k, v in before.items() if k not in preset
    }
    old_lines, new_lines = text.splitlines(), new.splitlines()
    assert len(old_lines) == len(new_lines)
    for old, line in zip(old_lines, new_lines, strict=True):
        if "#" in old:  # every comment survives, on its line
            assert old[old.index("#") :] in line
    config.from_dict(yaml.safe_load(new))  # type-checks


def test_radiograph_presets_never_flip_vertically_or_turn():
    for name in ("kermany-binary", "kermany-3class", "tb"):
        flat = presets.flatten(presets.load(name))
        assert flat["train.augment.vflip"] is False and flat["train.augment.rot90"] is False
        assert flat["balance.augment.hflip"] is False  # offline oversampling never mirrors a film


def test_cli_apply_list_and_one_line_errors(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text((ROOT / "params.yaml").read_text())
    assert main(["preset", "apply", "tb", "--params", str(params)]) == 0
    assert "preprocess.image_size: 50 -> 256" in capsys.readouterr().out
    assert config.load(params).data.format == "tb"
    assert main(["preset", "list"]) == 0
    assert "kermany-3class" in capsys.readouterr().out
    assert main(["preset", "apply", "nope", "--params", str(params)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "preset 'nope' does not exist; available: breakhis-densenet201" in err


def test_preset_key_missing_from_params_is_one_line(tmp_path):
    text = "train:\n  epochs: 3   # n\n"
    with pytest.raises(ConfigError, match=r"preset p sets train.ensemble, which params.yaml lacks"):
        presets.apply_text(text, {"train": {"ensemble": 3}}, "p")
    new, changes = presets.apply_text(text, {"train": {"epochs": 40}}, "p")
    assert new == "train:\n  epochs: 40  # n\n" and changes == ["train.epochs: 3 -> 40"]
