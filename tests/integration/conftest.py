"""Fixtures of the integration tier (real trainings, MLflow stores, dvc subprocesses, Prefect, moto)."""

from __future__ import annotations

import pytest
from helpers import registered_champion


@pytest.fixture(scope="module")
def registered_champion_project(tmp_path_factory):
    """(root, record) of a champion registered in a module's own MLflow store; cwd is root meanwhile."""
    yield from registered_champion.build(tmp_path_factory)
