"""The largest backbone of the zoo builds and predicts (kept out of the unit tier for its build time)."""

from helpers.model_checks import assert_builds_and_predicts


def test_densenet201_builds_and_predicts():
    assert_builds_and_predicts("densenet201")
