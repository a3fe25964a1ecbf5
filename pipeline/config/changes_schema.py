"""The `changes:` section of params.yaml (the changes stage, `medpipe changes`) and its load check.

alpha / min_effect gate every drift flag (pipeline.drift: a flag needs p < alpha AND distance >=
min_effect); n_perm permutations give the embedding test's p-value; max_reference caps the sample
of the champion's training images that are embedded (cost); seed makes every sample and test
repeatable (the stage's outputs are byte-deterministic); enabled: false writes a "disabled" baseline.
Defaults are pipeline.drift's, tuned by benchmarks/drift.py (power and false-alarm rate on real films).
The load check (n_perm against alpha) is pipeline.config.checks._changes_permutations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pipeline.config.types import Range, Seed


@dataclass(frozen=True)
class ChangesConfig:
    enabled: bool = True
    alpha: Annotated[float, Range(gt=0, lt=0.5)] = 0.01  # false-alarm rate of each test
    min_effect: Annotated[float, Range(ge=0, le=1)] = 0.3  # KS / total-variation distance to flag
    n_perm: Annotated[int, Range(ge=1, le=100_000)] = 200  # permutations of the embedding test
    max_reference: Annotated[int, Range(ge=2, le=1_000_000)] = 1000  # champion training images embedded
    seed: Seed = 0
