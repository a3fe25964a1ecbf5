"""The registered model as an MLflow pyfunc model: image bytes in, `p_<class>` columns + `label` out.

    model = mlflow.pyfunc.load_model("models:/medpipe-idc@champion")
    model.predict(pd.DataFrame({"image": [Path("patch.png").read_bytes()]}))

The input contract (an `image` column of bytes; `path` only for local batch use under allowed
roots; request limits) is pipeline.serving.contract; refusals reach the client as one line
(ScoringRefused), never a traceback. Versions registered before this contract took `path`
(check_contract names them).

The model directory (logged under the run's `model/` artifacts, the version's source) holds:
    MLmodel, python_env.yaml, requirements.txt    MLflow's metadata; signature + input example
    artifacts/model.keras                         the Keras model (custom layers registered under
                                                  the `medpipe>` package: import pipeline.models.layers)
    artifacts/label_map.json, train_summary.json  as written by the train stage
    artifacts/serving.json                        inference.ServingConfig: classes, positive class,
                                                  val-chosen threshold, image size, channels, window, tta
    code/pipeline/                                the pipeline package this model was registered with
                                                  (preprocessing, custom layers), put on sys.path at load
    code/pyfunc_entry.py                          models-from-code entry (no pickled objects)
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import shutil
import tempfile
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.protos.databricks_pb2 import BAD_REQUEST, INTERNAL_ERROR
from mlflow.types.schema import ColSpec, ParamSchema, ParamSpec, Schema

from pipeline.core import manifest
from pipeline.core.errors import MedpipeError
from pipeline.serving.contract import IMAGE, PATH
from pipeline.serving.predictor import DEFAULT_BATCH, ServingConfig

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # pipeline/
ENTRY = Path(__file__).with_name("pyfunc_entry.py")
KERAS_FILE, LABEL_MAP_FILE, SERVING_FILE, SUMMARY_FILE = (
    "model.keras",
    "label_map.json",
    "serving.json",
    "train_summary.json",
)
# What the pyfunc needs at load time (the pipeline package rides along as code).
_REQUIREMENTS = ("mlflow", "keras", "tensorflow-cpu", "tensorflow", "jax", "numpy", "pandas")
_REQUIREMENTS += ("opencv-python-headless", "pyyaml", "tqdm", "scikit-learn", "scipy", "pillow", "pydicom")
INTERNAL = "internal error while scoring; the details are in the server log"


class ScoringRefused(MlflowException):
    """An MlflowException whose one-line message stays one line. MLflow's scoring server rewrites
    `e.message` of a model's MlflowException to prepend the request's DataFrame repr
    (mlflow.pyfunc.scoring_server.invocations); the first message set is kept. Created without a
    stack trace, so the JSON answer is {"error_code", "message"} only."""

    @property
    def message(self) -> str:
        return self.__dict__.get("_one_line", "")

    @message.setter
    def message(self, value) -> None:
        self.__dict__.setdefault("_one_line", " ".join(str(value).split()))


class MedpipeModel(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper around inference.Predictor (the same code path as `medpipe predict`)."""

    def load_context(self, context) -> None:
        import keras

        import pipeline.models.layers  # noqa: F401  registers medpipe>RandomRot90 etc. for safe mode
        from pipeline.serving.predictor import Predictor

        cfg = ServingConfig.from_dict(json.loads(Path(context.artifacts["serving"]).read_text()))
        model = keras.saving.load_model(context.artifacts["keras_model"], safe_mode=True)
        self.predictor = Predictor(model, cfg)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        from pipeline.serving.contract import request_images
        from pipeline.serving.limits import Limits
        from pipeline.serving.paths import PathPolicy

        try:
            batch = int((params or {}).get("batch_size") or DEFAULT_BATCH)
            data = request_images(model_input, Limits.from_env(), PathPolicy.from_env())
            return self.predictor.predict(data, batch_size=batch)
        except MedpipeError as exc:
            raise ScoringRefused(str(exc), error_code=BAD_REQUEST) from None
        except Exception:  # noqa: BLE001 - the client gets one line, the log the traceback
            log.exception("scoring failed")
            raise ScoringRefused(INTERNAL, error_code=INTERNAL_ERROR) from None


def signature(cfg: ServingConfig) -> ModelSignature:
    """`image` (bytes) or, for local batch use only, `path`; both optional so either may be sent."""
    outputs = [ColSpec("double", c) for c in cfg.columns] + [ColSpec("string", "label")]
    return ModelSignature(
        inputs=Schema([ColSpec("binary", IMAGE, required=False), ColSpec("string", PATH, required=False)]),
        outputs=Schema(outputs),
        params=ParamSchema([ParamSpec("batch_size", "long", DEFAULT_BATCH)]),
    )


def requirements() -> list[str]:
    """Pinned versions of the installed packages the pyfunc imports."""
    pins = []
    for name in _REQUIREMENTS:
        try:
            pins.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return pins


def example_image(path: str | Path, cfg: ServingConfig) -> bytes:
    """The input example's bytes: the file as it is, but a DICOM file as a PNG of its decoded pixels
    (the model's decode), so no DICOM header (PatientName, PatientID, dates) enters the MLflow store."""
    import cv2

    from pipeline.core import dicom, images

    data = Path(path).read_bytes()
    if not dicom.is_dicom(data):
        return data
    window = tuple(cfg.window) if cfg.window else None
    img = images.decode(data, cfg.channels, window, voi=cfg.dicom_voi != "dataset")
    return cv2.imencode(".png", img[:, :, ::-1] if img.shape[2] == 3 else img)[1].tobytes()


def save(models_dir: Path, metrics: dict, dst: Path, example_paths: list[str]) -> ServingConfig:
    """Write the pyfunc model directory dst from models/ (train) and metrics.json (evaluate)."""
    models_dir, dst = Path(models_dir), Path(dst)
    cfg = ServingConfig.from_label_map(manifest.read_json(models_dir / LABEL_MAP_FILE), metrics)
    with tempfile.TemporaryDirectory(prefix="medpipe-pyfunc-") as tmp:
        serving = Path(tmp) / SERVING_FILE
        serving.write_text(json.dumps(cfg.to_dict(), indent=2))
        code = Path(tmp) / "code" / "pipeline"
        shutil.copytree(PACKAGE_DIR, code, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        artifacts = {
            "keras_model": str(models_dir / KERAS_FILE),
            "label_map": str(models_dir / LABEL_MAP_FILE),
        }
        artifacts["serving"] = str(serving)
        if (models_dir / SUMMARY_FILE).is_file():
            artifacts["train_summary"] = str(models_dir / SUMMARY_FILE)
        mlflow.pyfunc.save_model(
            path=str(dst),
            python_model=str(ENTRY),
            artifacts=artifacts,
            code_paths=[str(code)],
            signature=signature(cfg),
            input_example=pd.DataFrame({IMAGE: [example_image(p, cfg) for p in example_paths[:1]]})
            if example_paths
            else None,
            pip_requirements=requirements(),
            metadata={
                "medpipe": {"classes": cfg.classes, "positive": cfg.positive, "threshold": cfg.threshold}
            },
        )
    return cfg


def check_contract(input_names: list[str], uri: str) -> None:
    """A clear line for a version registered before the image-bytes contract (it took `path`)."""
    if IMAGE not in input_names:
        raise MedpipeError(
            f"{uri} was registered before medpipe models took image bytes (its signature takes "
            f"{input_names}); register a new version with this code (dvc repro register) and score that"
        )


def keras_files(model_dir: Path) -> Path:
    """The folder holding model.keras + label_map.json in a downloaded version (pyfunc or older flat layout)."""
    for candidate in (Path(model_dir) / "artifacts", Path(model_dir)):
        if (candidate / KERAS_FILE).is_file() and (candidate / LABEL_MAP_FILE).is_file():
            return candidate
    return Path(model_dir)
