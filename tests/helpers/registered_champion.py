"""A registered champion built from the evaluate-stage inputs: a model with medpipe's custom
augmentation layers, evaluated with TTA and registered in a per-module MLflow sqlite store."""

from __future__ import annotations

import contextlib
from pathlib import Path

import keras
import pytest

from helpers.evaluate_inputs import SIZE, small_cfg, write_evaluate_inputs
from pipeline import config
from pipeline.models.layers import RandomRot90
from pipeline.stages import evaluate, register

NAME = "pyfunc-test"


REGISTER_IN = {
    "model": Path("models"),
    "metrics": Path("reports/metrics.json"),
    "diagnostics": Path("reports/diagnostics.json"),
    "splits": Path("data/splits"),
}


REGISTER_OUT = {"record": Path("reports/registered.json"), "page": Path("reports/registered.html")}


def custom_layer_model() -> keras.Model:
    """The augmentation layers a trained medpipe model holds (RandomRot90 is medpipe's own) in front
    of an orientation-dependent head, so test-time augmentation changes the probabilities."""
    keras.utils.set_random_seed(7)
    return keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            keras.layers.RandomFlip("horizontal_and_vertical", seed=1),
            RandomRot90(seed=2, name="random_rot90"),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Flatten(),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )


def settings(**over) -> config.Config:
    # the model is untrained (about chance): no gate floor, or it could never hold `champion`
    base = {"evaluate": {"bootstrap": 20}, "gate": {"min": {}}, "registry": {"model_name": NAME}}
    return config.from_dict({**base, **over})


@contextlib.contextmanager
def project(tmp_path_factory: pytest.TempPathFactory, name: str):
    """(root, evaluate inputs, evaluate outputs) of a fresh project holding the evaluate-stage
    inputs; cwd and MLFLOW_TRACKING_URI point at root meanwhile (no lineage db, no DVC experiment)."""
    root = tmp_path_factory.mktemp(name)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        mp.delenv("MEDPIPE_LINEAGE_DB", raising=False)
        mp.delenv("DVC_EXP_NAME", raising=False)
        yield (root, *write_evaluate_inputs(root))


def build(tmp_path_factory: pytest.TempPathFactory):
    """Yield (project root, registered.json record) with cwd and MLFLOW_TRACKING_URI set to it."""
    with project(tmp_path_factory, "pyfunc") as (root, inputs, outputs):
        custom_layer_model().save(root / "models" / "model.keras")
        evaluate.run(small_cfg(tta=True), inputs, outputs)  # 8 views: flips x quarter turns
        yield root, register.run(settings(), REGISTER_IN, REGISTER_OUT)
