"""Params for benchmarks/medmnist.py: shared BASE, per-dataset YAML, --set overrides, reference rows."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from pipeline import config

HERE = Path(__file__).resolve().parent
MEDMNIST_V2 = {  # test AUC / ACC from the MedMNIST v2 paper (the rows quoted in issue #5)
    "pneumoniamnist": {"ResNet-18 (28)": (0.944, 0.854), "Google AutoML Vision": (0.991, 0.946)},
    "breastmnist": {"ResNet-18 (28)": (0.901, 0.863), "Google AutoML Vision": (0.919, 0.861)},
}
GOALS = {"pneumoniamnist": (0.985, 0.92), "breastmnist": (0.92, 0.87)}
BASE = {  # what every dataset shares; per-dataset choices live in medmnist_<dataset>.yaml
    "data": {"format": "medmnist"},
    "preprocess": {"image_size": 28, "channels": 1},
    "split": {"respect_source_split": True},
    "balance": {"strategy": "class_weight"},
    "evaluate": {"tta": False},
}


def merge(base: dict, override: dict) -> dict:
    """Deep merge (override wins); neither input is changed."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def dotted(assignments: list[str]) -> dict:
    """['train.epochs=40', 'train.augment.vflip=false'] -> nested dict (values parsed as YAML)."""
    out: dict = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item!r}: expected section.key=value")
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    return out


PRESET_FOR = {"pneumoniamnist": "kermany-binary"}  # chest X-rays: the Kermany preset's training recipe
PRESET_SECTIONS = ("balance", "train", "evaluate")  # data / preprocess / split stay MedMNIST's


def params_for(flag: str, config_file: Path | None, sets: list[str]) -> dict:
    """BASE, then the preset's training sections (PRESET_FOR), then medmnist_<flag>.yaml (or
    --config), then --set."""
    from pipeline.config import presets

    path = config_file or HERE / f"medmnist_{flag}.yaml"
    raw = copy.deepcopy(BASE)
    if flag in PRESET_FOR:
        preset = presets.load(PRESET_FOR[flag])
        raw = merge(raw, {k: v for k, v in preset.items() if k in PRESET_SECTIONS})
    raw = merge(raw, yaml.safe_load(path.read_text()) or {}) if path.is_file() else raw
    raw = merge(raw, dotted(sets))
    config.from_dict(raw)  # type-check before any work
    return raw
