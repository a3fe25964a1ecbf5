"""Per-epoch progress for fit: the `epoch n/N` log line with img/s and an ETA, and the learning
rate in the epoch logs.

The log line's logger name, `pipeline.training.epoch_log`, is one of the progress markers
`medpipe reproduce` shows while a rebuild trains (pipeline.registry.reproduce).
"""

from __future__ import annotations

import logging
import time

import keras

log = logging.getLogger(__name__)


def eta_text(seconds: float) -> str:
    """7s, 6m09s, 2h05m."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class EpochLog(keras.callbacks.Callback):
    """Log each epoch as `epoch n/N` with its metrics, img/s and an ETA; time the training part (img/s).

    N counts every phase (epochs + fine_tune_epochs). The ETA is for the remaining epochs at the
    mean wall time of this session's epochs (validation included; the first, graph-tracing epoch
    left out once there are others); early stopping can end sooner, so it is an upper bound.
    """

    def __init__(self, n_images: int, total_epochs: int | None = None, steps_per_epoch: int | None = None):
        super().__init__()
        self.n_images = n_images
        self.total_epochs = total_epochs
        # known: an epoch cut short (train.budget_images) counts only the share of images it ran
        self.steps_per_epoch = steps_per_epoch
        self.epoch_images: list[float] = []
        self.epochs: list[int] = []  # 1-based epochs run in this session
        self.resumes: dict[str, bool] = {}  # phase -> resumed with its full state (exact) or not
        self.epoch_seconds: list[float] = []  # training part of each epoch (no validation)
        self.wall_seconds: list[float] = []  # whole epoch, validation included

    def images_per_second(self) -> float | None:
        """Steady-state training throughput: the first epoch (graph tracing) is left out when possible."""
        skip = 1 if len(self.epoch_seconds) > 1 else 0
        seconds, images = sum(self.epoch_seconds[skip:]), sum(self.epoch_images[skip:])
        return images / seconds if seconds > 0 else None

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = self._t_last = time.perf_counter()
        self._steps = 0

    # its batch hook only reads the clock: Keras may run it off the loop's thread (async dispatch,
    # out of order; all done before on_epoch_end) instead of syncing on every step's results
    async_safe = True

    def on_train_batch_end(self, batch, logs=None):
        self._t_last = max(self._t_last, time.perf_counter())
        self._steps = max(self._steps, batch + 1)

    def eta(self, epoch: int) -> str:
        """', ETA <= 6m09s' after 1-based epoch (empty when N is unknown or this was the last)."""
        if not self.total_epochs or epoch >= self.total_epochs or not self.wall_seconds:
            return ""
        per_epoch = self.wall_seconds[1:] or self.wall_seconds
        return f", ETA <= {eta_text((self.total_epochs - epoch) * sum(per_epoch) / len(per_epoch))}"

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(epoch + 1)
        seconds = self._t_last - self._t0
        self.epoch_seconds.append(seconds)
        self.wall_seconds.append(time.perf_counter() - self._t0)
        share = min(1.0, self._steps / self.steps_per_epoch) if self.steps_per_epoch else 1.0
        self.epoch_images.append(self.n_images * share)
        shown = " ".join(f"{k}={v:.4g}" for k, v in sorted((logs or {}).items()))
        total = f"/{self.total_epochs}" if self.total_epochs else ""
        log.info(
            "epoch %d%s: %s (%.0f img/s, %s/epoch%s)",
            epoch + 1,
            total,
            shown,
            self.epoch_images[-1] / max(seconds, 1e-9),
            eta_text(self.wall_seconds[-1]),
            self.eta(epoch + 1),
        )


class LearningRateLog(keras.callbacks.Callback):
    """Put the optimizer's current learning rate (also a schedule's) into the epoch logs."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
