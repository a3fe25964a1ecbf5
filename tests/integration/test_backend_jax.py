"""The train stage under KERAS_BACKEND=jax, and its model.keras read back by TensorFlow.

The Keras backend is fixed per process and this pytest process runs TensorFlow, so the JAX
side runs this file as a script in a subprocess (`python tests/integration/test_backend_jax.py JOB OUT`):
  train        - the real train stage for baseline_cnn and small_resnet; each model.keras loaded
                 back in safe mode and its val predictions saved; baseline_cnn trained twice more
                 (CPU determinism).
  application  - the same for mobilenetv2 (weights none, 32 px): XLA compiles it for minutes on
                 2 busy CPU cores.
  data_parallel - 2 forced host CPU devices: Runtime reports 2 replicas, a 1-epoch train splits
                 every training batch over both, an odd batch size is refused.
The TensorFlow side then loads the JAX-trained models and compares probabilities. The
subprocess cannot import tensorflow (as on a GPU host with JAX only): a JAX-path import of it fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent  # helpers/ lives here
ROOT = TESTS.parent
FROM_SCRATCH = {"baseline_cnn": 24, "small_resnet": 24}  # model -> image size
APPLICATION = {"mobilenetv2": 32}
MODELS = {**FROM_SCRATCH, **APPLICATION}


# ---------------------------------------------------------------- JAX side (subprocess) ----


def _train_models(out: Path, models: dict[str, int]) -> tuple[dict, dict]:
    import keras
    from helpers.train_inputs import outputs_in, tiny_cfg, write_train_inputs

    from pipeline.evaluation.predictions import load_model
    from pipeline.stages import train
    from pipeline.training.predict import predict_proba

    (size,) = set(models.values())  # one preprocessed size per job
    inputs = write_train_inputs(
        Path("."), n_train=32, n_val=16, image_size=size
    )  # full batches: one XLA compile per step
    val = pd.read_csv(inputs["splits"] / "val.csv")
    result = {"backend": keras.backend.backend(), "models": {}}
    for name, size in models.items():
        outs = outputs_in(Path("."), f"_{name}")
        train.run(tiny_cfg(size, model=name, epochs=1), inputs, outs)
        model = load_model(outs["model"] / "model.keras")  # safe mode
        np.save(out / f"{name}_proba.npy", predict_proba(model, val, size, 3))
        summary = json.loads((outs["model"] / "train_summary.json").read_text())
        result["models"][name] = {
            "dir": str(outs["model"].resolve()),
            "files": sorted(p.name for p in outs["model"].iterdir()),
            "label_map": json.loads((outs["model"] / "label_map.json").read_text()),
            "backend": summary["backend"],
        }
    return result, inputs


def _train_job(out: Path) -> dict:
    from test_train_stage import outputs_in, tiny_cfg

    from pipeline.evaluation.predictions import load_model
    from pipeline.stages import train

    result, inputs = _train_models(out, FROM_SCRATCH)
    runs = []
    for tag in ("_det_a", "_det_b"):
        outs = outputs_in(Path("."), tag)
        train.run(tiny_cfg(), inputs, outs)
        runs.append(load_model(outs["model"] / "model.keras").get_weights())
    diffs = [float(np.max(np.abs(a - b))) if a.size else 0.0 for a, b in zip(*runs, strict=True)]
    result["determinism_max_abs_diff"] = max(diffs)
    return result


def _application_job(out: Path) -> dict:
    return _train_models(out, APPLICATION)[0]


def _data_parallel_job(out: Path) -> dict:
    from helpers.train_inputs import outputs_in, tiny_cfg, write_train_inputs
    from keras.src.backend.jax import trainer as jax_trainer

    from pipeline.core.errors import ConfigError
    from pipeline.stages import train
    from pipeline.training.runtime import configure

    runtime = configure(0)
    shards: list[list[tuple[int, ...]]] = []
    distribute = jax_trainer._distribute_data

    def spy(data, layouts=None):  # records how each batch fit() sees is laid out on the devices
        placed = distribute(data, layouts)
        shards.append([tuple(s.data.shape) for s in placed[0].addressable_shards])
        return placed

    jax_trainer._distribute_data = spy
    # train 33 = 4 batches of 8 + 1, whose last batch the fill-up makes a full 8; val 17 = 2 x 8 + 1,
    # which is not filled up, so its last batch of 1 is padded to 2 (one image per device)
    inputs = write_train_inputs(Path("."), n_train=33, n_val=17)
    summary = train.run(tiny_cfg(epochs=1, batch_size=8), inputs, outputs_in(Path(".")))
    try:
        train.run(tiny_cfg(epochs=1, batch_size=7), inputs, outputs_in(Path("."), "_odd"))
        refused = None
    except ConfigError as exc:
        refused = str(exc)
    return {
        "runtime": runtime.summary(),
        "shards": shards,
        "epochs_run": summary["epochs_run"],
        "refused": refused,
    }


JOBS = {"train": _train_job, "application": _application_job, "data_parallel": _data_parallel_job}


class _NoTensorFlow:
    """Import hook: `import tensorflow` fails, as on a host that has JAX and no TensorFlow."""

    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")
        return None


def run_jax(job: str, tmp: Path, devices: int = 1) -> dict:
    """Run JOB of this file under KERAS_BACKEND=jax in `tmp`; its result dict."""
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": f"{TESTS}{os.pathsep}{ROOT}"}
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env["CUDA_VISIBLE_DEVICES"] = ""
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), job, str(tmp)],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((tmp / f"{job}.json").read_text())


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.WARNING)
    sys.meta_path.insert(0, _NoTensorFlow())
    job, out_dir = sys.argv[1], Path(sys.argv[2])
    (out_dir / f"{job}.json").write_text(json.dumps(JOBS[job](out_dir)))
    sys.exit(0)


# ---------------------------------------------------------------- TensorFlow side (pytest) --


@pytest.fixture(scope="module")
def jax_trained(tmp_path_factory) -> tuple[Path, dict]:
    tmp = tmp_path_factory.mktemp("jax_train")
    return tmp, run_jax("train", tmp)


@pytest.fixture(scope="module")
def jax_application(tmp_path_factory) -> tuple[Path, dict]:
    tmp = tmp_path_factory.mktemp("jax_application")
    return tmp, run_jax("application", tmp)


def _check_artifacts(result: dict, models: dict[str, int]) -> None:
    assert result["backend"] == "jax"
    assert set(result["models"]) == set(models)
    for name, info in result["models"].items():
        assert info["backend"] == "jax", name
        assert info["files"] == ["label_map.json", "model.keras", "train_summary.json"], name
        assert info["label_map"]["classes"] == ["c0", "c1"] and info["label_map"]["positive"] == "c1"
        assert info["label_map"]["image_size"] == models[name]


def _check_tensorflow_predicts_the_same(tmp: Path, info: dict, name: str, varies: bool = True) -> None:
    """Load the JAX-trained model.keras through the evaluate stage's loader; same probabilities."""
    import keras

    from pipeline.evaluation.predictions import load_model
    from pipeline.training.predict import predict_proba

    assert keras.backend.backend() == "tensorflow"
    model = load_model(Path(info["dir"]) / "model.keras")
    val = pd.read_csv(tmp / "data/splits/val.csv")
    val["path"] = [str(tmp / p) for p in val["path"]]
    tf_proba = predict_proba(model, val, info["label_map"]["image_size"], 3)
    jax_proba = np.load(tmp / f"{name}_proba.npy")
    assert tf_proba.shape == jax_proba.shape == (len(val), 2)
    if varies:  # a model that tells images apart, not a constant
        assert np.ptp(jax_proba[:, 1]) > 1e-4
    np.testing.assert_allclose(tf_proba, jax_proba, atol=1e-4)


def test_train_stage_under_jax_writes_the_model_dir_with_its_label_map(jax_trained):
    _check_artifacts(jax_trained[1], FROM_SCRATCH)


@pytest.mark.parametrize("name", list(FROM_SCRATCH))
def test_jax_trained_model_predicts_the_same_under_tensorflow(jax_trained, name):
    tmp, result = jax_trained
    _check_tensorflow_predicts_the_same(tmp, result["models"][name], name)


def test_jax_cpu_training_is_deterministic(jax_trained):
    assert jax_trained[1]["determinism_max_abs_diff"] == 0.0


def test_jax_trained_application_backbone_loads_under_tensorflow(jax_application):
    tmp, result = jax_application
    _check_artifacts(result, APPLICATION)
    # from scratch after 4 steps its BatchNorm moving statistics are still ~ their init, so at
    # inference the (vanishing) features give a near-constant output: compare, but no spread check
    _check_tensorflow_predicts_the_same(tmp, result["models"]["mobilenetv2"], "mobilenetv2", varies=False)


def test_jax_data_parallel_splits_each_batch_over_two_devices(tmp_path):
    result = run_jax("data_parallel", tmp_path, devices=2)
    assert result["runtime"]["devices"] == ["cpu:0", "cpu:1"]
    assert result["runtime"]["replicas"] == 2 and result["runtime"]["distribution"] == "data_parallel"
    assert result["epochs_run"] == 1
    # train: 5 full batches of 8 (the last one filled up), each split in equal halves over both
    # devices (Keras also distributes one batch to peek at shapes). Val (17 = 2 x 8 + 1) is predicted
    # by ValMetrics with predict_on_batch, which does not split a batch: its last batch of 1 needs no
    # padding, and the epoch (validated) ran
    for shapes in result["shards"]:
        assert len(shapes) == 2 and shapes[0] == shapes[1], shapes
    per_device = sorted(shapes[0][0] for shapes in result["shards"])
    assert set(per_device) == {4} and len(per_device) >= 5, result["shards"]
    assert "train.batch_size 7 must be a multiple of the 2 devices" in result["refused"]


# ---------------------------------------------------------------- device plan (no GPU needed) --


@pytest.mark.parametrize(
    ("backend", "devices", "precision", "distribution", "replicas"),
    [
        ("tensorflow", ["cpu:0"], "float32", "none", 1),
        ("tensorflow", ["gpu:0"], "mixed_float16", "none", 1),
        ("tensorflow", ["gpu:0", "gpu:1"], "mixed_float16", "mirrored", 2),
        ("tensorflow", ["cpu:0", "cpu:1"], "float32", "none", 1),  # MirroredStrategy: GPUs only
        ("jax", ["cpu:0"], "float32", "none", 1),
        ("jax", ["cpu:0", "cpu:1"], "float32", "data_parallel", 2),
        ("jax", ["gpu:0"], "mixed_float16", "none", 1),
        ("jax", ["gpu:0", "gpu:1", "gpu:2", "gpu:3"], "mixed_float16", "data_parallel", 4),
        ("jax", ["tpu:0", "tpu:1"], "mixed_bfloat16", "data_parallel", 2),
        ("torch", ["gpu:0", "gpu:1"], "mixed_float16", "none", 1),
    ],
)
def test_plan_picks_precision_and_distribution_from_the_devices(
    backend, devices, precision, distribution, replicas
):
    from pipeline.training.runtime import plan

    chosen = plan(backend, devices)
    assert (chosen.precision, chosen.distribution, chosen.replicas) == (precision, distribution, replicas)
    assert len(chosen.devices) >= replicas


def test_plan_precision_override_and_unknown_precision():
    from pipeline.core.errors import ConfigError
    from pipeline.training.runtime import plan

    assert plan("jax", ["gpu:0", "gpu:1"], "float32").precision == "float32"
    assert plan("jax", ["cpu:0"], "mixed_bfloat16").precision == "mixed_bfloat16"
    with pytest.raises(ConfigError, match="precision 'fp8' is unknown"):
        plan("jax", ["gpu:0"], "fp8")


def test_configure_applies_the_plan_to_the_global_dtype_policy():
    import keras

    from pipeline.config import TrainConfig
    from pipeline.models import build_model
    from pipeline.training.runtime import configure

    try:
        runtime = configure(0, precision="mixed_float16")  # what a GPU gets; runs on CPU too
        model = build_model(TrainConfig(model="baseline_cnn"), (24, 24, 3), 2)
        assert runtime.precision == "mixed_float16" and runtime.replicas == 1
        assert model.get_layer("block1_conv").compute_dtype == "float16"
        assert model.get_layer("block1_conv").variable_dtype == "float32"
        assert model.output.dtype == "float32"  # softmax head stays float32
    finally:
        runtime = configure(0)
    assert runtime.summary()["precision"] == "float32" and runtime.summary()["devices"] == ["cpu:0"]
    assert keras.mixed_precision.global_policy().name == "float32"


def _batches(sizes: list[int], batch_size: int):
    """A PyDataset whose batch idx has sizes[idx] samples (x: [n, 2], y: 0..n-1)."""
    import keras

    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return len(sizes)

        def __getitem__(self, idx):
            n = sizes[idx]
            return np.arange(n * 2, dtype=np.float32).reshape(n, 2), np.arange(n, dtype=np.float32)

    ds = Batches()
    ds.batch_size = batch_size
    return ds


def test_shardable_pads_a_short_batch_and_refuses_an_indivisible_batch_size():
    from pipeline.core.errors import ConfigError
    from pipeline.training.runtime import Plan, Runtime

    dp = Runtime("jax", Plan("float32", "data_parallel", ("cpu:0", "cpu:1", "cpu:2", "cpu:3")))
    padded = dp.shardable(_batches([8, 8, 3], batch_size=8))
    assert len(padded) == 3 and len(padded[0][0]) == 8
    x, y = padded[2]
    np.testing.assert_array_equal(y, [0, 1, 2, 0])  # padded to 4 by repeating the first sample
    np.testing.assert_array_equal(x[3], x[0])
    with pytest.raises(ConfigError, match="batch_size 6 must be a multiple of the 4 devices.*use 8"):
        dp.shardable(_batches([6], batch_size=6))
    single = Runtime("jax", Plan("float32", "none", ("cpu:0",)))
    ds = _batches([3], batch_size=3)
    assert single.shardable(ds) is ds
