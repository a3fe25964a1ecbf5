"""IDC slide heat map: patch probabilities laid out by their x/y coordinates, beside the truth.

IDC patch names carry the patch's top-left pixel (x, y) on the patient's whole-slide image;
patches are placed on a grid of the patch stride (smallest gap between distinct coordinates).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.evaluation.figures import plt, to_base64


def heatmap_patient(test_df: pd.DataFrame, is_positive: np.ndarray) -> str | None:
    """The test patient with the most patches that have x/y coordinates (ties: most positive
    patches, then patient id); None when no patch has coordinates."""
    if not {"x", "y", "patient_id"} <= set(test_df.columns):
        return None
    located = (test_df["x"].notna() & test_df["y"].notna() & test_df["patient_id"].notna()).to_numpy()
    if not located.any():
        return None
    frame = pd.DataFrame(
        {"patient": test_df["patient_id"].astype("string")[located], "pos": is_positive[located]}
    )
    stats = frame.groupby("patient")["pos"].agg(["size", "sum"]).reset_index()
    stats = stats.sort_values(["size", "sum", "patient"], ascending=[False, False, True])
    return str(stats["patient"].iloc[0])


def _stride(coords: np.ndarray) -> int:
    gaps = np.diff(np.unique(coords))
    return int(gaps.min()) if gaps.size else 1


def slide_grids(xs: np.ndarray, ys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """values placed on a (rows, cols) grid by coordinates; NaN where no patch exists."""
    cx, cy = (xs - xs.min()) // _stride(xs), (ys - ys.min()) // _stride(ys)
    grid = np.full((int(cy.max()) + 1, int(cx.max()) + 1), np.nan)
    grid[cy.astype(int), cx.astype(int)] = values
    return grid


def heatmap_figure(
    test_df: pd.DataFrame, p_positive: np.ndarray, is_positive: np.ndarray
) -> tuple[str, str] | None:
    """(patient id, base64 PNG of ground truth | predicted P(positive)); None without coordinates."""
    patient = heatmap_patient(test_df, np.asarray(is_positive, dtype=bool))
    if patient is None:
        return None
    mask = (test_df["patient_id"].astype("string") == patient).fillna(False).to_numpy()
    mask &= test_df["x"].notna().to_numpy() & test_df["y"].notna().to_numpy()
    xs = test_df.loc[mask, "x"].to_numpy(dtype=np.int64)
    ys = test_df.loc[mask, "y"].to_numpy(dtype=np.int64)
    truth = slide_grids(xs, ys, is_positive[mask].astype(float))
    prob = slide_grids(xs, ys, p_positive[mask])
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
    cmap = plt.get_cmap("coolwarm").with_extremes(bad="#e8e8e8")  # grey: no patch
    for ax, grid, title in (
        (axes[0], truth, "ground truth (1 = positive)"),
        (axes[1], prob, "predicted P(positive)"),
    ):
        shown = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"patient {patient}: {title}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(shown, ax=axes, shrink=0.8)
    return patient, to_base64(fig)
