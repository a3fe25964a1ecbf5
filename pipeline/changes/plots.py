"""Distribution plots then/now for reports/changes.html: one figure per class, one panel per
numeric image property (the champion's reference sample vs the new images), base64 PNG."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.evaluation.figures import plt, to_base64

NUMERIC = ("intensity_mean", "intensity_std", "height", "width", "aspect")
MAX_CLASSES = 12


def _panel(ax, then: pd.Series, new: pd.Series, name: str) -> None:
    values = pd.concat([then, new]).astype(float).dropna()
    if values.empty:
        ax.set_axis_off()
        return
    lo, hi = float(values.min()), float(values.max())
    bins = np.linspace(lo, hi if hi > lo else lo + 1.0, 31)
    for series, label, colour in ((then, "then (champion)", "#4472c4"), (new, "new", "#e07020")):
        data = series.astype(float).dropna()
        if len(data):
            ax.hist(data, bins=bins, density=True, alpha=0.55, color=colour, label=f"{label} n={len(data)}")
    ax.set_title(name, fontsize=9)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6)


def property_figures(props: pd.DataFrame) -> list[dict]:
    """[{"class": name, "png": base64}] for up to MAX_CLASSES classes (empty without new images)."""
    if props.empty or "side" not in props.columns:
        return []
    names = [c for c in NUMERIC if c in props.columns and props[c].notna().any()]
    if not names:
        return []
    by = (
        props["class_name"].astype(str)
        if "class_name" in props.columns
        else pd.Series("all", index=props.index)
    )
    figures = []
    for cls in sorted(by.unique())[:MAX_CLASSES]:
        rows = props[by == cls]
        fig, axes = plt.subplots(1, len(names), figsize=(2.6 * len(names), 2.3), squeeze=False)
        for ax, name in zip(axes[0], names, strict=True):
            _panel(ax, rows.loc[rows["side"] == "then", name], rows.loc[rows["side"] == "new", name], name)
        fig.suptitle(str(cls), fontsize=10)
        figures.append({"class": str(cls), "png": to_base64(fig)})
    return figures
