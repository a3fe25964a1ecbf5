"""Exact resume: the training state that BackupAndRestore's weights file does not hold.

A resumed train must reproduce the uninterrupted run on CPU. The weights file restores weights,
optimizer slots and iterations; the data order is a function of (seed, epoch) (EpochShuffle).
What is left is saved here at every backup and restored on resume: the state of every
SeedGenerator in the model (augmentation layers, dropout), the counters of ReduceLROnPlateau and
EarlyStopping, and the plateau-reduced learning rate. A backup without that state (e.g. written
by an older version) resumes inexactly: `ResumableBackup.exact` is False and the train summary
says so (the register gate then refuses to promote the model without a fresh run).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import keras
import numpy as np

log = logging.getLogger(__name__)
STATE_FILE = "resume_state.json"
KEPT = 2  # states of the last two backups (BackupAndRestore keeps two weight files too)
CALLBACK_FIELDS = {
    "ReduceLROnPlateau": ("wait", "cooldown_counter", "best"),
    "EarlyStopping": ("wait", "best", "best_epoch", "stopped_epoch"),
}


def seed_states(model: keras.Model) -> list:
    return [v for v in model.variables if v.name == "seed_generator_state"]


def capture(model: keras.Model, callbacks: list) -> dict:
    state: dict = {"seeds": [np.asarray(keras.ops.convert_to_numpy(v)).tolist() for v in seed_states(model)]}
    for cb in callbacks:
        fields = CALLBACK_FIELDS.get(type(cb).__name__, ())
        state[type(cb).__name__] = {
            f: float(getattr(cb, f)) for f in fields if getattr(cb, f, None) is not None
        }
        if isinstance(cb, keras.callbacks.ReduceLROnPlateau):
            state["learning_rate"] = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    return state


def restore(model: keras.Model, callbacks: list, state: dict) -> None:
    variables = seed_states(model)
    if len(variables) != len(state.get("seeds", [])):
        raise ValueError(
            f"{len(variables)} seed generators in the model, {len(state.get('seeds', []))} saved"
        )
    for var, value in zip(variables, state["seeds"], strict=True):
        var.assign(np.asarray(value, dtype=var.dtype))
    for cb in callbacks:
        for field, value in state.get(type(cb).__name__, {}).items():
            setattr(cb, field, type(getattr(cb, field, value))(value) if field != "best" else value)
        if isinstance(cb, keras.callbacks.ReduceLROnPlateau) and "learning_rate" in state:
            model.optimizer.learning_rate = state["learning_rate"]


def write_json(path: Path, obj: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, sort_keys=True))
    os.replace(tmp, path)


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


class ResumableBackup(keras.callbacks.BackupAndRestore):
    """BackupAndRestore that also saves/restores the state above. Put it LAST in the callback list:
    its on_train_begin must run after the other callbacks reset their counters."""

    # backs up per epoch only, so its batch hook never acts: Keras may dispatch batch hooks async
    async_safe = True

    def __init__(self, backup_dir: str, stateful: tuple = ()):
        super().__init__(backup_dir, double_checkpoint=True)
        self.stateful = list(stateful)
        self.exact: bool | None = None  # None: nothing to resume; True/False: resumed exactly or not

    @property
    def state_path(self) -> Path:
        return Path(self.backup_dir) / STATE_FILE

    def _save_model(self):
        # the state first: a kill between the two leaves the previous epoch's state in place
        Path(self.backup_dir).mkdir(parents=True, exist_ok=True)
        states = read_json(self.state_path)
        states[str(self._current_epoch)] = capture(self.model, self.stateful)
        keep = sorted(states, key=int)[-KEPT:]
        write_json(self.state_path, {k: states[k] for k in keep})
        super()._save_model()

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        epoch = getattr(self.model, "_initial_epoch", None)
        if not epoch:
            return
        state = read_json(self.state_path).get(str(epoch))
        if state is None:
            self.exact = False
            log.warning("resuming at epoch %d without its RNG/callback state: not an exact resume", epoch + 1)
            return
        restore(self.model, self.stateful, state)
        self.exact = True
        log.info("resumed at epoch %d with RNG and callback state restored (exact resume)", epoch + 1)
