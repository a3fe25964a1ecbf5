"""mmd_test: the unbiased statistic, its false-alarm rate under the null, power on a mean shift."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.drift.mmd import mmd_test


def direct_mmd2(x: np.ndarray, y: np.ndarray, bandwidth: float) -> float:
    """The unbiased MMD^2 written out pair by pair (reference for the vectorised one)."""

    def k(a, b):
        return float(np.exp(-np.sum((a - b) ** 2) / bandwidth))

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(a, b) for a in x for b in y) / (m * n)
    return xx + yy - 2 * xy


def test_statistic_matches_the_pairwise_definition():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(7, 3)), rng.normal(0.5, 1, size=(5, 3))
    out = mmd_test(x, y, n_perm=50)
    assert out["mmd2"] == pytest.approx(direct_mmd2(x, y, out["bandwidth"]), rel=1e-9)
    pooled = np.concatenate([x, y])
    d2 = [np.sum((a - b) ** 2) for i, a in enumerate(pooled) for b in pooled[i + 1 :]]
    assert out["bandwidth"] == pytest.approx(np.median(d2))


def test_same_distribution_false_alarm_rate_is_about_alpha():
    p_values, flags = [], 0
    for seed in range(40):
        rng = np.random.default_rng(100 + seed)
        out = mmd_test(rng.normal(size=(40, 4)), rng.normal(size=(30, 4)), n_perm=100, seed=seed, alpha=0.05)
        p_values.append(out["p_value"])
        flags += out["flag"]
    assert flags <= 5  # alpha 0.05 of 40 = 2 expected; P(Binomial(40, 0.05) > 5) < 1 %
    assert 0.35 < np.mean(p_values) < 0.65  # ~ uniform on (0, 1]
    assert np.mean(np.array(p_values) < 0.5) == pytest.approx(0.5, abs=0.2)


def test_mean_shift_is_detected():
    rng = np.random.default_rng(7)
    out = mmd_test(rng.normal(size=(60, 8)), rng.normal(0.6, 1, size=(40, 8)))
    assert out["flag"] and out["p_value"] < 0.01
    assert out["test"] == "mmd_rbf_permutation" and out["alpha"] == 0.01


def test_each_side_is_subsampled_to_max_n():
    rng = np.random.default_rng(3)
    out = mmd_test(rng.normal(size=(500, 2)), rng.normal(size=(300, 2)), max_n=100, n_perm=20)
    assert (out["n_ref"], out["n_new"]) == (100, 100)


def test_too_few_rows_is_no_test_and_bad_input_an_error():
    out = mmd_test(np.zeros((5, 2)), np.zeros((1, 2)))
    assert out["p_value"] is None and out["flag"] is False and "no test" in out["detail"]
    with pytest.raises(ValueError, match="same width"):
        mmd_test(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="NaN"):
        mmd_test(np.full((5, 2), np.nan), np.zeros((5, 2)))
