"""Typed params: numeric ranges declared on field types, and the coercion that checks them.

`batch_size: Annotated[int, Range(ge=1)] = 16` (also inside lists: `tuple[Annotated[int,
Range(ge=1)], ...]`); the aliases below cover the common cases. `build(cls, raw)` turns a
parsed mapping into the frozen dataclass `cls`, section by section, raising ConfigError with a
one-line message that names the key (and a close match for typos, or the accepted range).
pipeline.config declares the sections and is the one loader every stage calls.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pipeline.core.errors import ConfigError


@dataclass(frozen=True)
class Range:
    """Accepted interval of a numeric key (any bound may be None); `odd` for kernel sizes."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    odd: bool = False

    def accepts(self, v: float) -> bool:
        if isinstance(v, float) and not math.isfinite(v):
            return False
        return not (
            (self.ge is not None and v < self.ge)
            or (self.gt is not None and v <= self.gt)
            or (self.le is not None and v > self.le)
            or (self.lt is not None and v >= self.lt)
            or (self.odd and v % 2 != 1)
        )

    def __str__(self) -> str:
        lo = (
            f"{_num(self.ge)} <= "
            if self.ge is not None
            else f"{_num(self.gt)} < "
            if self.gt is not None
            else ""
        )
        hi = (
            f" <= {_num(self.le)}"
            if self.le is not None
            else f" < {_num(self.lt)}"
            if self.lt is not None
            else ""
        )
        if lo and not hi:  # "value >= 1" reads better than "1 <= value"
            bound, op = lo.split()
            lo, hi = "", f" {op.replace('<', '>')} {bound}"
        return f"{lo}value{hi}" + (", odd" if self.odd else "")


def _num(v: float) -> str:
    return f"{v:g}" if isinstance(v, float) else f"{v:,}".replace(",", "_") if abs(v) >= 100_000 else str(v)


SEED_MAX = 2**32 - 1  # numpy / Keras seeds
Seed = Annotated[int, Range(ge=0, le=SEED_MAX)]
Count = Annotated[int, Range(ge=0)]  # 0 allowed (off / none)
Positive = Annotated[int, Range(ge=1)]
Fraction = Annotated[float, Range(ge=0, lt=1)]  # [0, 1)
Probability = Annotated[float, Range(ge=0, le=1)]  # [0, 1]
Rate = Annotated[float, Range(gt=0, le=1)]  # learning rates: (0, 1]
Degrees = Annotated[float, Range(ge=0, le=180)]
Side = Annotated[int, Range(ge=8, le=2048)]  # model input side in pixels
Workers = Annotated[int, Range(ge=0, le=512)]


def coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Annotated:
        out = coerce(value, args[0], key)
        for rng in (m for m in tp.__metadata__ if isinstance(m, Range)):
            if not rng.accepts(out):
                raise ConfigError(f"params: '{key}' is {value!r}; accepted range: {rng}")
        return out
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"params: '{key}' must be a mapping, got {value!r}")
        return build(tp, value, key)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        for tp_inner in inner[1:]:  # `float | Literal["chance"]`: the first that accepts the value
            try:
                return coerce(value, tp_inner, key)
            except ConfigError:
                continue
        return coerce(value, inner[0], key)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"params: '{key}' is {value!r}; expected one of {', '.join(map(repr, args))}")
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"params: '{key}' must be a mapping, got {value!r}")
        return {coerce(k, args[0], key): coerce(v, args[1], f"{key}.{k}") for k, v in value.items()}
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"params: '{key}' must be a list, got {value!r}")
        return tuple(coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"params: '{key}' must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"params: '{key}' must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"params: '{key}' must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"params: '{key}' must be a string, got {value!r}")
        return value
    return value


def build(cls: type, raw: dict, prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls, include_extras=True)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in raw:
        if key not in names:
            where = f"{prefix}.{key}" if prefix else key
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(names)}"
            raise ConfigError(f"params: unknown key '{where}'{hint}")
    kwargs = {k: coerce(v, hints[k], f"{prefix}.{k}" if prefix else k) for k, v in raw.items()}
    return cls(**kwargs)
