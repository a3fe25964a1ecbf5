"""Image-property drift: per image properties (size, depth, format, intensity, DICOM header values)
and, per class, a two-sample test of then against now with a distance and a flag.

A flag needs both a small p-value (the batch is unlikely to come from the reference) and a
distance of at least `min_effect` (KS statistic / total variation): with 10,000 new images every
trivial difference is "significant", with 5 any difference is noise; the two together keep the
false-alarm rate of a same-source batch low at both ends. Defaults alpha 0.01, min_effect 0.3: chosen
on the benchmark's trials (at 0.05 / 0.2, 35 % of same-source batches of 100 real films were flagged,
since films cluster by patient; benchmarks/results/drift.json has the grid and the rates).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

NUMERIC = ("height", "width", "aspect", "intensity_mean", "intensity_std")
CATEGORICAL = ("channels", "bit_depth", "format", "modality", "manufacturer", "photometric")
# DICOM header columns validate may carry (first name present wins).
HEADER_COLUMNS = {
    "modality": ("modality", "Modality"),
    "manufacturer": ("manufacturer", "Manufacturer"),
    "photometric": ("photometric", "photometric_interpretation", "PhotometricInterpretation"),
}
MISSING = "(none)"  # a categorical value absent on an image (e.g. no DICOM header)
UNLABELLED = None  # "class" of the entry comparing unlabelled new images with every reference image
CHUNK = 2048  # images per intensity pass (bounded memory on memory-mapped arrays)
TOP = 8  # categories kept in a categorical summary


def _intensity(arrays: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per image mean and standard deviation over pixels and channels (uint8 arrays, N first)."""
    means, stds = np.empty(len(arrays)), np.empty(len(arrays))
    for start in range(0, len(arrays), CHUNK):
        block = np.asarray(arrays[start : start + CHUNK], dtype=np.float32).reshape(
            min(CHUNK, len(arrays) - start), -1
        )
        means[start : start + len(block)] = block.mean(axis=1)
        stds[start : start + len(block)] = block.std(axis=1)
    return means, stds


def _bit_depth(dtype: pd.Series) -> pd.Series:
    """'uint8' -> '8', 'uint16' -> '16', anything else kept as written."""
    text = dtype.astype("string")
    return text.str.extract(r"(\d+)$", expand=False).fillna(text).astype(object)


def image_properties(validated: pd.DataFrame, arrays: np.ndarray | None) -> pd.DataFrame:
    """One row per image of `validated` (same order): class_name, path and the properties above.

    `arrays` are the preprocessed uint8 images row-aligned with `validated` (N, S, S, C) or None
    (intensity columns are then NaN). DICOM header columns appear only when validated has them.
    """
    if arrays is not None and len(arrays) != len(validated):
        raise ValueError(f"{len(arrays)} arrays for {len(validated)} manifest rows; they must be row-aligned")
    out = pd.DataFrame(index=range(len(validated)))
    for column in ("path", "class_name"):
        values = validated[column] if column in validated else pd.Series([None] * len(validated))
        out[column] = values.astype(object).to_numpy()
    for column in ("height", "width"):
        values = pd.to_numeric(validated[column], errors="coerce") if column in validated else None
        out[column] = values.to_numpy(dtype=float, na_value=np.nan) if values is not None else np.nan
    out["aspect"] = out["width"] / out["height"]
    if "channels" in validated:
        out["channels"] = validated["channels"].astype("string").fillna(MISSING).astype(object).to_numpy()
    if "dtype" in validated:
        out["bit_depth"] = _bit_depth(validated["dtype"]).to_numpy()
    path = out["path"].astype("string")
    out["format"] = path.str.extract(r"\.([^./]+)$", expand=False).str.lower().fillna(MISSING).astype(object)
    means, stds = _intensity(arrays) if arrays is not None else (np.nan, np.nan)
    out["intensity_mean"], out["intensity_std"] = means, stds
    for name, candidates in HEADER_COLUMNS.items():
        found = next((c for c in candidates if c in validated), None)
        if found:
            out[name] = validated[found].astype("string").fillna(MISSING).astype(object).to_numpy()
    return out


def _numeric(then: pd.Series, now: pd.Series) -> tuple[float, float | None, dict, dict] | None:
    a, b = then.dropna().to_numpy(float), now.dropna().to_numpy(float)
    if not len(a) or not len(b):
        return None
    test = stats.ks_2samp(a, b)

    def summary(x: np.ndarray) -> dict:
        p5, p50, p95 = np.percentile(x, [5, 50, 95])
        return {
            "n": len(x),
            "mean": float(x.mean()),
            "p5": float(p5),
            "median": float(p50),
            "p95": float(p95),
        }

    return float(test.statistic), float(test.pvalue), summary(a), summary(b)


def _categorical(then: pd.Series, now: pd.Series) -> tuple[float, float | None, dict, dict]:
    a, b = then.fillna(MISSING).astype(str), now.fillna(MISSING).astype(str)
    table = pd.crosstab(
        pd.Series(np.r_[np.zeros(len(a)), np.ones(len(b))]), np.r_[a.to_numpy(), b.to_numpy()]
    )
    shares = table.div(table.sum(axis=1), axis=0)
    distance = float(0.5 * (shares.iloc[0] - shares.iloc[1]).abs().sum())
    p_value = float(stats.chi2_contingency(table.to_numpy()).pvalue) if table.shape[1] > 1 else 1.0

    def summary(row: pd.Series, n: int) -> dict:
        top = row[row > 0].sort_values(ascending=False).head(TOP)
        return {"n": n, "shares": {str(k): round(float(v), 4) for k, v in top.items()}}

    return distance, p_value, summary(shares.iloc[0], len(a)), summary(shares.iloc[1], len(b))


def _detail(name: str, kind: str, distance: float, p_value: float, then: dict, now: dict) -> str:
    if kind == "numeric":
        change = f"median {then['median']:.4g} -> {now['median']:.4g}"
        return f"{name}: {change} (n {then['n']} -> {now['n']}), KS {distance:.3f}, p {p_value:.2g}"
    most = max(now["shares"], key=now["shares"].get) if now["shares"] else MISSING
    change = f"{most}: {then['shares'].get(most, 0):.0%} -> {now['shares'].get(most, 0):.0%}"
    return f"{name}: {change} (n {then['n']} -> {now['n']}), TV {distance:.3f}, chi2 p {p_value:.2g}"


def _groups(
    then: pd.DataFrame, now: pd.DataFrame, by: str
) -> list[tuple[object, pd.DataFrame, pd.DataFrame]]:
    """(class, then rows, now rows) for each class present on both sides, plus unlabelled new rows
    against every reference row."""
    out = []
    for cls in sorted(set(then[by].dropna()) & set(now[by].dropna()), key=str):
        out.append((cls, then[then[by] == cls], now[now[by] == cls]))
    unlabelled = now[now[by].isna()]
    if len(unlabelled) and len(then):
        out.append((UNLABELLED, then, unlabelled))
    return out


def property_drift(
    then: pd.DataFrame,
    now: pd.DataFrame,
    by: str = "class_name",
    *,
    alpha: float = 0.01,
    min_effect: float = 0.3,
) -> list[dict]:
    """One entry per (property, class) present on both sides: distance, p-value, flag, summaries
    and a one-line detail. Frames are image_properties() outputs (then: the reference sample)."""
    entries = []
    for cls, a, b in _groups(then, now, by):
        for name in (*NUMERIC, *CATEGORICAL):
            kind = "numeric" if name in NUMERIC else "categorical"
            if (name not in a or name not in b) and (kind == "numeric" or (name not in a and name not in b)):
                continue  # a categorical column on one side only (DICOM now, PNG then) is a change
            left, right = (
                a.get(name, pd.Series([MISSING] * len(a))),
                b.get(name, pd.Series([MISSING] * len(b))),
            )
            result = _numeric(left, right) if kind == "numeric" else _categorical(left, right)
            if result is None:
                continue
            distance, p_value, s_then, s_now = result
            flag = bool(p_value < alpha and distance >= min_effect)
            entries.append(
                {
                    "name": name,
                    "class": cls,
                    "kind": kind,
                    "distance": distance,
                    "p_value": p_value,
                    "flag": flag,
                    "then": s_then,
                    "now": s_now,
                    "detail": _detail(name, kind, distance, p_value, s_then, s_now),
                }
            )
    return entries
