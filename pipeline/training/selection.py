"""Model selection on val: the metric behind checkpointing and early stopping (train.monitor).

`ValMetrics` is the one validation pass of an epoch: it predicts the val set once and adds val_loss,
val_accuracy (what Keras' own `validation_data` pass reported, which fit no longer runs: it predicted
the val set a second time), val_auc (binary ROC AUC; one-vs-rest macro AUC for more classes),
val_macro_auc and val_balanced_accuracy to the epoch logs before any other callback reads them.
`monitor_of` resolves train.monitor (auto = val_auc for two classes, val_balanced_accuracy for
more) and its direction. Selection never looks at warm-up epochs
(train.warmup_epochs): `WarmupCheckpoint` and EarlyStopping(start_from_epoch) skip them.
"""

from __future__ import annotations

import logging
import math

import keras
import numpy as np
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from pipeline.config import TrainConfig

log = logging.getLogger(__name__)
MAXIMISED = ("val_auc", "val_macro_auc", "val_balanced_accuracy")


def monitor_of(cfg: TrainConfig, n_classes: int) -> tuple[str, str]:
    """(log key, 'min' | 'max') for cfg.monitor on a task with n_classes."""
    name = cfg.monitor
    if name == "auto":
        name = "val_auc" if n_classes == 2 else "val_balanced_accuracy"
    return name, "max" if name in MAXIMISED else "min"


def selection_start(cfg: TrainConfig) -> int:
    """First 0-based epoch a checkpoint may be chosen from: after the cosine warm-up."""
    return cfg.warmup_epochs if cfg.lr_schedule == "cosine" else 0


def val_metrics(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """{'val_auc', 'val_macro_auc', 'val_balanced_accuracy'} from labels and softmax rows."""
    out = {"val_balanced_accuracy": float(balanced_accuracy_score(y, proba.argmax(1)))}
    try:
        if proba.shape[1] == 2:  # symmetric: AUC of class 1 on p1 == AUC of class 0 on p0
            auc = float(roc_auc_score(y, proba[:, 1]))
        else:
            auc = float(roc_auc_score(y, proba, multi_class="ovr", labels=list(range(proba.shape[1]))))
    except ValueError:  # a class missing from val: no AUC (never selected on)
        auc = math.nan
    return out | {"val_auc": auc, "val_macro_auc": auc}


class ValMetrics(keras.callbacks.Callback):
    """Predict `val_ds` (a PyDataset of (x, one-hot y) batches) at each epoch end; add val_loss
    (`loss` over the whole set, as Keras' size-weighted mean of batch losses, + model.losses),
    val_accuracy and val_metrics. predict_on_batch takes a batch of any size, also under JAX data
    parallelism (it does not split the batch over the devices)."""

    def __init__(self, val_ds, loss: keras.losses.Loss):
        super().__init__()
        self.val_ds = val_ds
        self.loss = loss

    def on_epoch_end(self, epoch, logs=None):
        ys, ps = [], []
        for i in range(len(self.val_ds)):
            x, y = self.val_ds[i][:2]
            ps.append(np.asarray(self.model.predict_on_batch(x), dtype=np.float32))
            ys.append(np.asarray(y, dtype=np.float32))
        onehot, proba = np.concatenate(ys), np.concatenate(ps)
        loss = float(keras.ops.convert_to_numpy(self.loss(onehot, proba)))
        loss += sum(float(keras.ops.convert_to_numpy(extra)) for extra in self.model.losses)
        y = onehot.argmax(-1)
        if logs is not None:
            logs.update(val_loss=loss, val_accuracy=float(np.mean(proba.argmax(-1) == y)))
            logs.update(val_metrics(y, proba.astype(np.float64)))


class WarmupCheckpoint(keras.callbacks.ModelCheckpoint):
    """ModelCheckpoint that ignores epochs before `start_epoch` (no choice during warm-up).

    It saves per epoch only, so its batch hook never acts: `async_safe` lets Keras run batch hooks
    off the training loop's thread instead of syncing every step (pipeline.training.fit)."""

    async_safe = True

    def __init__(self, *args, start_epoch: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.start_epoch = start_epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch >= self.start_epoch:
            super().on_epoch_end(epoch, logs)


def best_row(table, monitor: str, mode: str, start_epoch: int = 0):
    """The history row (1-based `epoch` column) that selection picked: best `monitor` after the
    warm-up; the last row when no epoch qualifies."""
    if monitor in table.columns:
        eligible = table[(table["epoch"] > start_epoch) & table[monitor].notna()]
        if not eligible.empty:
            return eligible.loc[eligible[monitor].idxmax() if mode == "max" else eligible[monitor].idxmin()]
    return table.iloc[-1]
