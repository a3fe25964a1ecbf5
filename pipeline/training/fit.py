"""Compile and fit in one or two phases with resumable checkpoints.

Phase 'train' runs epochs [0, cfg.epochs); with a pretrained backbone it is frozen there.
Phase 'fine_tune' (cfg.fine_tune_epochs > 0) runs [cfg.epochs, cfg.epochs + fine_tune_epochs)
at cfg.fine_tune_learning_rate with the backbone's top layers unfrozen (recompiled).
Both start from the best weights so far; the best weights by train.monitor (val AUC, balanced
accuracy or val_loss; pipeline.training.selection) after the warm-up are kept at the end.
Per epoch the val set is predicted once (ValMetrics), and no callback syncs on a step's results
(batch hooks are async-safe or run at a step's begin), so the loop is the compiled step plus what
validation costs (benchmarks/epoch_profile.py).
Optimizer and learning-rate schedule per phase come from pipeline.training.optim
(train.optimizer, train.lr_schedule); ReduceLROnPlateau runs only with lr_schedule: plateau.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import keras

from pipeline.config import TrainConfig
from pipeline.core.errors import ConfigError
from pipeline.models import applications
from pipeline.training.allocator import KeepFreedMemory
from pipeline.training.budget import Budget, StepBudget
from pipeline.training.checkpoints import CheckpointDir
from pipeline.training.data import ArrayBatches, EpochShuffle
from pipeline.training.epoch_log import EpochLog, LearningRateLog
from pipeline.training.losses import make_loss
from pipeline.training.optim import make_optimizer
from pipeline.training.out_of_memory import out_of_memory_as_one_line
from pipeline.training.precise_bn import PreciseBatchNorm
from pipeline.training.resume import ResumableBackup, capture, read_json, restore, write_json
from pipeline.training.runtime import Runtime
from pipeline.training.selection import ValMetrics, WarmupCheckpoint, monitor_of, selection_start

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Phase:
    name: str
    initial_epoch: int
    epochs: int  # index of the last epoch + 1, as in keras fit(epochs=...)
    learning_rate: float
    backbone: str | None  # None (no backbone) | "frozen" | "fine_tune" | "all"


def plan_phases(cfg: TrainConfig, model: keras.Model) -> list[Phase]:
    has_backbone = applications.has_backbone(model)
    frozen = has_backbone and applications.is_pretrained(cfg.weights)
    first = "frozen" if frozen else ("all" if has_backbone else None)
    phases = [Phase("train", 0, cfg.epochs, cfg.learning_rate, first)]
    if cfg.fine_tune_epochs > 0 and not frozen:
        raise ConfigError(
            f"train.fine_tune_epochs is {cfg.fine_tune_epochs} but nothing is frozen (train.weights: "
            f"{cfg.weights}, model {cfg.model}): the whole net would drop to fine_tune_learning_rate; "
            "add those epochs to train.epochs and set fine_tune_epochs: 0"
        )
    if cfg.fine_tune_epochs > 0:
        second = "fine_tune"
        total = cfg.epochs + cfg.fine_tune_epochs
        phases.append(Phase("fine_tune", cfg.epochs, total, cfg.fine_tune_learning_rate, second))
    return phases


def compile_model(
    model: keras.Model,
    optimizer: float | keras.optimizers.Optimizer,
    loss: str,
    label_smoothing: float = 0.0,
    steps_per_execution: int = 1,
    jit_compile: bool | str = "auto",
) -> None:
    """Compile with `optimizer` (a float means Adam at that learning rate) and the named loss;
    `jit_compile` as the runtime says (Runtime.jit_compile: True under JAX)."""
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        optimizer = keras.optimizers.Adam(optimizer)
    model.compile(
        optimizer=optimizer,
        loss=make_loss(loss, label_smoothing),
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
        jit_compile=jit_compile,
    )


def _callbacks(cfg: TrainConfig, phase: Phase, ckpt: CheckpointDir, train_ds, val_ds, timer) -> list:
    if cfg.lr_schedule == "plateau":
        lr_control = keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=cfg.reduce_lr_factor, patience=cfg.reduce_lr_patience
        )
    else:  # the schedule sets the rate per step; ReduceLROnPlateau cannot change a schedule
        lr_control = LearningRateLog()
    monitor, mode = monitor_of(cfg, val_ds.n_classes)
    start = selection_start(cfg)
    early_stopping = keras.callbacks.EarlyStopping(
        monitor=monitor,
        mode=mode,
        patience=cfg.early_stopping_patience,
        restore_best_weights=True,
        start_from_epoch=start,
    )
    precise = [PreciseBatchNorm(train_ds, cfg.precise_bn_batches)] if cfg.precise_bn_batches else []
    return [
        *precise,  # at the epoch's end, before the one validation pass reads the statistics
        # the epoch's one validation pass: the callbacks below read its val_loss / val_auc / ...
        ValMetrics(val_ds, make_loss(cfg.loss, cfg.label_smoothing)),
        KeepFreedMemory(),  # TF's dataset would make every step page-fault its activations anew
        EpochShuffle(train_ds),
        timer,
        lr_control,
        early_stopping,
        WarmupCheckpoint(
            ckpt.best_weights,
            monitor=monitor,
            mode=mode,
            save_best_only=True,
            save_weights_only=True,
            initial_value_threshold=ckpt.best_value(monitor, mode, start),
            start_epoch=start,
        ),
        # history row before the backup: a kill in between repeats the epoch (deduplicated)
        keras.callbacks.CSVLogger(str(ckpt.history), append=True),
        # last: restores RNG and callback state after the others reset theirs (exact resume)
        ResumableBackup(str(ckpt.backup(phase.name)), stateful=(lr_control, early_stopping)),
    ]


def fit(
    model: keras.Model,
    train_ds: ArrayBatches,
    val_ds: ArrayBatches,
    cfg: TrainConfig,
    ckpt: CheckpointDir,
    runtime: Runtime,
    extra_callbacks: tuple = (),
    steps_per_execution: int | None = None,
    budget: Budget | None = None,
) -> EpochLog:
    """Run every phase not finished yet; leave the best (train.monitor) weights in `model`.

    With a `budget` (cfg resolved by pipeline.training.budget.resolve) phase 'train' stops after
    exactly budget.steps optimizer steps and its cosine schedule spans those steps.

    Class weights travel as per-sample weights in the training batches (ArrayBatches), gathered
    with the images: Keras' `class_weight=` would map them per sample in Python every step.
    """
    timer = EpochLog(train_ds.n, cfg.epochs + cfg.fine_tune_epochs, steps_per_epoch=len(train_ds))
    for phase in plan_phases(cfg, model):
        done = ckpt.phase_weights(phase.name)
        done_state = done.with_name(f"{phase.name}.done.state.json")
        if done.is_file():
            log.info("phase %s already finished; loading its weights", phase.name)
            model.load_weights(done)
            state = read_json(done_state)
            if state:
                restore(model, [], state)
            timer.resumes[phase.name] = bool(state)
            continue
        if phase.backbone in ("frozen", "fine_tune"):
            applications.set_backbone_trainable(model, phase.backbone)
        with runtime.scope():
            steps = len(train_ds)
            phase_epochs = phase.epochs - phase.initial_epoch
            optimizer = make_optimizer(cfg, phase.learning_rate, phase_epochs, steps, budget)
            compile_model(
                model,
                optimizer,
                cfg.loss,
                cfg.label_smoothing,
                steps_per_execution or 1,
                runtime.jit_compile(model),
            )
        model._initial_epoch = None  # set by BackupAndRestore of a previous phase; Keras never resets it
        log.info(
            "phase %s: epochs %d-%d, lr %g (%s, %s)",
            phase.name,
            phase.initial_epoch + 1,
            phase.epochs,
            phase.learning_rate,
            cfg.optimizer,
            cfg.lr_schedule,
        )
        callbacks = _callbacks(cfg, phase, ckpt, train_ds, val_ds, timer)
        if budget is not None and phase.name == "train":  # first: the others see the short epoch end
            callbacks.insert(0, StepBudget(budget.steps, len(train_ds), phase.initial_epoch))
        with runtime.scope(), out_of_memory_as_one_line(cfg, train_ds, runtime):
            model.fit(  # JAX's DataParallel distributes each batch only inside the runtime's scope
                runtime.shardable(train_ds),
                # no validation_data: ValMetrics validates, in one pass (Keras' would be a second)
                epochs=phase.epochs,
                initial_epoch=phase.initial_epoch,
                # the dataset orders its own batches from (seed, epoch); Keras' shuffle would reorder
                # them with Python's global `random`, which any other code (or a resume) can advance
                shuffle=False,
                callbacks=[*callbacks, *extra_callbacks],
                verbose=0,
            )
        if callbacks[-1].exact is not None:
            timer.resumes[phase.name] = callbacks[-1].exact
        if ckpt.best_weights.is_file():
            model.load_weights(ckpt.best_weights)
        write_json(done_state, capture(model, []))  # seed states go on into the next phase
        model.save_weights(done)
    return timer
