"""The one typed loader for params.yaml.

Every section is a frozen dataclass (pipeline.config.schema); unknown keys, missing required keys,
wrong types and values outside their accepted range raise ConfigError with a one-line message that
names the key (and a close match for typos, or the accepted range). Every stage loads params through
here first, so an impossible value stops the run before any data is touched. Checks that relate
several keys (pipeline.config.checks) run after the per-key types and ranges.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from pipeline.config.checks import CROSS_CHECKS
from pipeline.config.schema import Config
from pipeline.config.types import build
from pipeline.core.errors import ConfigError


def from_dict(raw: dict | None) -> Config:
    """Build a Config from a parsed params mapping (missing keys take their defaults)."""
    cfg = build(Config, raw or {})
    for check in CROSS_CHECKS:
        message = check(cfg)
        if message:
            raise ConfigError(message)
    return cfg


def load(path: str | Path = "params.yaml") -> Config:
    """Read and type-check params.yaml."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"params file {path} not found; run from the project root or pass --params")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"params file {path} is not valid YAML: {exc}".splitlines()[0]) from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"params file {path} must be a mapping of sections")
    return from_dict(raw)


def to_dict(cfg: Config) -> dict:
    """Plain-dict view (for logging params with a model version)."""
    return dataclasses.asdict(cfg)
