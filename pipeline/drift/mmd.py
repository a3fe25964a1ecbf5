"""Embedding drift: a kernel two-sample test (MMD, Gretton et al. 2012) with a permutation p-value.

The permutation p-value has the stated false-alarm rate by construction (under "same distribution"
every relabelling of the pooled sample is equally likely), whatever the embedding. RBF kernel with
the median-heuristic bandwidth; the unbiased MMD^2 estimate. Each side is subsampled to at most
`max_n` rows (seeded), so memory is O(max_n^2): 2,000 pooled rows = one 32 MB kernel matrix, and
all permutations are evaluated at once as one (n_perm x N) @ (N x N) product. Default alpha 0.01
(with property_drift's, chosen on benchmarks/drift.py's trials: films of one patient are not
independent draws, so a batch's false-alarm rate exceeds the per-test alpha; n_perm 200 resolves
p down to 1/201).
"""

from __future__ import annotations

import numpy as np

TEST = "mmd_rbf_permutation"


def _subsample(x: np.ndarray, max_n: int, rng: np.random.Generator) -> np.ndarray:
    if len(x) <= max_n:
        return x
    return x[np.sort(rng.choice(len(x), size=max_n, replace=False))]


def _rbf_kernel(z: np.ndarray) -> tuple[np.ndarray, float]:
    """exp(-|a - b|^2 / h) over the pooled rows, h = the median pairwise squared distance."""
    sq = np.einsum("ij,ij->i", z, z)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (z @ z.T), 0.0)
    np.fill_diagonal(d2, 0.0)
    off = d2[np.triu_indices(len(z), k=1)]
    bandwidth = float(np.median(off)) if len(off) else 1.0
    if bandwidth <= 0:  # more than half of the pairs coincide: fall back to the mean distance
        bandwidth = float(off.mean()) if len(off) and off.mean() > 0 else 1.0
    d2 /= -bandwidth
    return np.exp(d2, out=d2), bandwidth


def _mmd2(kernel: np.ndarray, members: np.ndarray, m: int, n: int) -> np.ndarray:
    """Unbiased MMD^2 for each row of `members` (0/1, shape (P, N), m ones per row = the X side)."""
    kx = members @ kernel
    s_xx = np.einsum("pj,pj->p", kx, members)
    s_xy = members @ kernel.sum(axis=1) - s_xx
    s_yy = kernel.sum() - s_xx - 2.0 * s_xy
    diag = 1.0  # k(a, a) for the RBF kernel
    return (s_xx - m * diag) / (m * (m - 1)) + (s_yy - n * diag) / (n * (n - 1)) - 2.0 * s_xy / (m * n)


def mmd_test(
    ref: np.ndarray,
    new: np.ndarray,
    *,
    n_perm: int = 200,
    alpha: float = 0.01,
    seed: int = 0,
    max_n: int = 1000,
) -> dict:
    """Is `new` (n x d) drawn from the distribution of `ref` (m x d)? Flag when p < alpha.

    Returns {"test", "n_ref", "n_new", "mmd2", "p_value", "alpha", "flag", "n_perm", "bandwidth",
    "detail"}; n_ref / n_new are the rows tested (after subsampling). Fewer than 2 rows on a side:
    no test (mmd2 and p_value None, flag False, detail says why).
    """
    ref, new = np.asarray(ref, dtype=np.float64), np.asarray(new, dtype=np.float64)
    if ref.ndim != 2 or new.ndim != 2 or ref.shape[1] != new.shape[1]:
        raise ValueError(f"embeddings must be 2-D with the same width, got {ref.shape} and {new.shape}")
    if not (np.isfinite(ref).all() and np.isfinite(new).all()):
        raise ValueError("embeddings contain NaN or infinite values")
    rng = np.random.default_rng(seed)
    x, y = _subsample(ref, max_n, rng), _subsample(new, max_n, rng)
    m, n = len(x), len(y)
    out = {"test": TEST, "n_ref": m, "n_new": n, "mmd2": None, "p_value": None, "alpha": alpha, "flag": False}
    out |= {"n_perm": n_perm, "bandwidth": None}
    if m < 2 or n < 2:
        return out | {"detail": f"no test: {m} reference and {n} new embeddings (need 2 each)"}
    kernel, bandwidth = _rbf_kernel(np.concatenate([x, y]))
    observed = float(_mmd2(kernel, np.r_[np.ones(m), np.zeros(n)][None, :], m, n)[0])
    members = np.zeros((n_perm, m + n))
    for row in members:
        row[rng.permutation(m + n)[:m]] = 1.0
    null = _mmd2(kernel, members, m, n)
    p_value = float((1 + np.count_nonzero(null >= observed)) / (1 + n_perm))
    flag = bool(p_value < alpha)
    detail = f"MMD^2 {observed:.3g} on {m} reference vs {n} new embeddings, permutation p {p_value:.3g}"
    return out | {
        "mmd2": observed,
        "p_value": p_value,
        "flag": flag,
        "bandwidth": bandwidth,
        "detail": detail,
    }
