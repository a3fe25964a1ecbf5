"""Fit the members of a seed ensemble (train.ensemble = N; N = 1 is one model) on shared batches.

Member k trains with seed + k in its own checkpoint dir, so after a kill each member resumes on its
own, and its best epoch is selected from its own history. The models come back in float32, ready
for pipeline.models.ensemble.average.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from pipeline.config import TrainConfig
from pipeline.core.errors import ConfigError
from pipeline.models import build_model
from pipeline.training import budget as budgets
from pipeline.training import checkpoints, export
from pipeline.training.data import ArrayBatches
from pipeline.training.fit import fit
from pipeline.training.runtime import configure
from pipeline.training.selection import best_row, monitor_of, selection_start


def resume_exact(members: list[dict]) -> bool | None:
    """None: nothing resumed; False: some member resumed without its RNG state; True: exact."""
    flags = [m["resume_exact"] for m in members if m["resumed"]]
    return all(flags) if flags else None


@dataclasses.dataclass
class Fitted:
    """The fitted members in seed order; `timer` and `runtime` are the last member's; `tcfg` is the
    TrainConfig as run (a budget's epochs filled in), `budget` its step plan (None: epochs)."""

    monitor: str
    mode: str
    tcfg: TrainConfig | None = None
    budget: budgets.Budget | None = None
    models: list = dataclasses.field(default_factory=list)  # float32
    members: list[dict] = dataclasses.field(default_factory=list)  # seed, resume state, selection, img/s
    histories: list[tuple] = dataclasses.field(default_factory=list)  # (CheckpointDir, raw history)
    timer: Any = None
    runtime: Any = None

    def add(self, tcfg: TrainConfig, ckpt, resumed: bool, model, timer, runtime, rebuild) -> None:
        """Record one fitted member: its best epoch from its own history, and its float32 model."""
        history = ckpt.read_history()
        table = export.history_table(history)
        best = best_row(table, self.monitor, self.mode, selection_start(tcfg))
        self.members.append(
            {
                "seed": tcfg.seed,
                "resumed": resumed,
                "resume_exact": all(timer.resumes.values()) if resumed else None,
                "epochs_run": int(table["epoch"].max()),
                "best_epoch": int(best["epoch"]),
                f"best_{self.monitor}": float(best[self.monitor]),
                "images_per_second": timer.images_per_second(),
            }
        )
        self.models.append(export.as_float32(model, rebuild))
        self.histories.append((ckpt, history))
        self.timer, self.runtime = timer, runtime


def fit_members(
    tcfg: TrainConfig,
    batches: tuple[ArrayBatches, ArrayBatches],
    root: Path,
    fingerprint: dict,
    fp_files: list[Path],
    callbacks: tuple = (),
) -> Fitted:
    """Fit tcfg.ensemble members on (train, val) `batches`, which this closes when fitting ends or
    a fit fails. A member resumes from root[/member<k+1>] only when its checkpoints were saved
    with the same `fingerprint` (+ its seed) and the same `fp_files` contents."""
    train_ds, val_ds = batches
    n_classes, shape = train_ds.n_classes, tuple(int(d) for d in train_ds.images.shape[1:])
    budget = budgets.plan(tcfg, train_ds.n)  # one-line ConfigError before any model is built
    tcfg = budgets.resolve(tcfg, budget)
    fitted = Fitted(*monitor_of(tcfg, n_classes), tcfg=tcfg, budget=budget)
    n_members = tcfg.ensemble
    if n_members < 1:
        raise ConfigError(f"train.ensemble is {n_members}; use 1 (one model) or N > 1 seeds to average")
    for k in range(n_members):
        mcfg = dataclasses.replace(tcfg, seed=tcfg.seed + k)
        ckpt = checkpoints.CheckpointDir(root / (f"member{k + 1}" if n_members > 1 else ""))
        resumed = ckpt.prepare(checkpoints.fingerprint({**fingerprint, "member_seed": mcfg.seed}, fp_files))
        runtime = configure(mcfg.seed)
        train_ds.seed = mcfg.seed
        with runtime.scope():
            model = build_model(mcfg, shape, n_classes)
        try:
            timer = fit(model, train_ds, val_ds, mcfg, ckpt, runtime, callbacks, budget=budget)
        except BaseException:
            train_ds.close()
            val_ds.close()
            raise
        fitted.add(
            mcfg, ckpt, resumed, model, timer, runtime, lambda c=mcfg: build_model(c, shape, n_classes)
        )
    train_ds.close()
    val_ds.close()
    return fitted
