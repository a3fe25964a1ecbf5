"""The registered model name: registry.model_name when set, otherwise derived from the data.

Rule (also in params.yaml): `medpipe-<data.format>`, then `-<data.classes>` for chest_xray
(binary | three) and `-tumor_type` for breakhis with data.label tumor_type; so the default
sample (idc) is `medpipe-idc`. Models of different data therefore never share a champion.
Every reader of the name (reports, train run, register) asks here.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.config.schema import Config

# What MLflow accepts as a registered model name (no '/', ':', '%', '\\', no path tricks such as
# '..'), narrowed to a portable set; '@' is excluded because `name@alias` refers to a version.
NAME_RULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}")
NAME_RULE_TEXT = "letters, digits, '_', '.', '-', starting with a letter or digit, at most 255 characters"


def derived_name(cfg: Config) -> str:
    """The name registry.model_name: null stands for (see the module doc)."""
    data = cfg.data
    parts = ["medpipe", data.format]
    if data.format == "chest_xray":
        parts.append(data.classes)
    elif data.format == "breakhis" and data.label != "class":
        parts.append(data.label)
    return "-".join(parts)


def registered_name(cfg: Config) -> str:
    """The effective registered model name of this config."""
    return cfg.registry.model_name or derived_name(cfg)


def name_problem(name: str) -> str | None:
    """Why MLflow (or a `name@alias` reference) would refuse `name`; None when it is fine."""
    if NAME_RULE.fullmatch(name) and ".." not in name:
        return None
    return f"params: 'registry.model_name' is {name!r}; accepted: {NAME_RULE_TEXT} (no '..')"
