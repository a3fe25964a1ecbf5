"""Report figures (matplotlib Agg) returned as base64 PNG strings for inline <img> tags."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

DPI = 100


def to_base64(fig: Figure) -> str:
    """PNG bytes of the figure, base64-encoded; closes the figure."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def roc_figure(roc: pd.DataFrame, auc: float | None, label: str) -> str:
    fig, ax = plt.subplots(figsize=(4.5, 4.2))
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="chance")
    if len(roc):
        ax.plot(roc["fpr"], roc["tpr"], lw=2, label=f"{label} (AUC {auc:.3f})" if auc is not None else label)
    ax.set(
        xlabel="False positive rate (1 - specificity)", ylabel="True positive rate (sensitivity)", title="ROC"
    )
    ax.set(xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="lower right", fontsize=8)
    return to_base64(fig)


def pr_figure(pr: pd.DataFrame, ap: float | None, prevalence: float, label: str) -> str:
    fig, ax = plt.subplots(figsize=(4.5, 4.2))
    ax.axhline(prevalence, ls="--", c="grey", lw=1, label=f"prevalence {prevalence:.2f}")
    if len(pr):
        ax.step(
            pr["recall"],
            pr["precision"],
            where="post",
            lw=2,
            label=f"{label} (AP {ap:.3f})" if ap is not None else label,
        )
    ax.set(
        xlabel="Recall (sensitivity)",
        ylabel="Precision (PPV)",
        title="Precision-recall",
        xlim=(0, 1),
        ylim=(0, 1.02),
    )
    ax.legend(loc="lower left", fontsize=8)
    return to_base64(fig)


def confusion_figure(matrix: list[list[int]], classes: list[str]) -> str:
    cm = np.asarray(matrix)
    size = max(3.5, 1.1 * len(classes) + 2)
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    ax.imshow(cm, cmap="Blues")
    for (i, j), value in np.ndenumerate(cm):
        ax.text(
            j, i, str(value), ha="center", va="center", color="white" if value > cm.max() / 2 else "black"
        )
    ax.set_xticks(range(len(classes)), classes, rotation=30, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set(xlabel="Predicted", ylabel="Actual", title="Confusion matrix (test images)")
    return to_base64(fig)


def calibration_figure(calibration: pd.DataFrame, ece: float | None, label: str) -> str:
    fig, (ax, hist) = plt.subplots(2, 1, figsize=(4.5, 5.2), height_ratios=[3, 1], sharex=True)
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="perfect calibration")
    ece_text = f", ECE {ece:.3f}" if ece is not None else ""
    ax.plot(calibration["mean_predicted"], calibration["fraction_positive"], "o-", label=f"model{ece_text}")
    ax.set(ylabel="Observed fraction", title=f"Reliability diagram ({label})", xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="upper left", fontsize=8)
    hist.bar(calibration["mean_predicted"], calibration["count"], width=0.08, color="tab:grey")
    hist.set(xlabel="Mean predicted probability (10 bins)", ylabel="Images")
    return to_base64(fig)


def history_figure(history: pd.DataFrame) -> str:
    fig, (loss, acc) = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, metric in ((loss, "loss"), (acc, "accuracy")):
        for col, style in ((metric, "-"), (f"val_{metric}", "--")):
            if col in history.columns and history[col].notna().any():
                ax.plot(history["epoch"], history[col], style, marker="o", label=col)
        ax.set(xlabel="Epoch", title=metric.capitalize())
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=8)
    return to_base64(fig)
