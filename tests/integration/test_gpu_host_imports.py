"""The GPU host has JAX but no TensorFlow, dvc, Great Expectations, MLflow or Prefect: the train
and preprocess stages, the CLI and the GPU benchmark must import (and run) without them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ABSENT = ("tensorflow", "dvc", "great_expectations", "mlflow", "prefect")

SCRIPT = f"""
import importlib, json, sys
ABSENT = {ABSENT!r}

class Absent:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ABSENT:
            raise ModuleNotFoundError(f"No module named {{name!r}} (not on the GPU host)")
        return None

sys.meta_path.insert(0, Absent())
sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / "benchmarks")!r}]
for name in ("pipeline.cli", "pipeline.stages.preprocess", "pipeline.stages.train", "train_throughput"):
    importlib.import_module(name)
import keras
print(json.dumps({{"backend": keras.backend.backend(), "loaded": sorted(m for m in sys.modules if m.split(".")[0] in ABSENT)}}))
"""


def test_train_stage_imports_without_tf_dvc_gx_mlflow_prefect():
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"backend": "jax", "loaded": []}
