"""`medpipe predict MODEL IMAGE|DIR...`: class probabilities and the thresholded label per image.

MODEL is one of
    <name>@<alias|version>        a registered version (e.g. medpipe-idc@champion), via MLflow
    models:/..., runs:/..., s3://... any MLflow model URI of a medpipe pyfunc model
    a directory with an MLmodel   a downloaded medpipe pyfunc model
    a models/ directory           the train stage's output (model.keras + label_map.json); the
                                  threshold comes from --metrics (default reports/metrics.json),
                                  TTA from the diagnostics.json beside it
The tracking URI is MLFLOW_TRACKING_URI, else params.yaml's registry.tracking_uri.
Directories are searched recursively for image files (PNG, JPEG, TIFF, BMP and DICOM .dcm). The
files are read here and handed to the model as bytes, under the serving limits (bytes and pixels
per image, pipeline.serving.limits), as a served request would be. --heatmap DIR writes one slide heat map per
IDC patient (file names <pid>_idx5_x<X>_y<Y>_class<C>.png) to DIR/<pid>.png.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core import manifest
from pipeline.core.errors import MedpipeError
from pipeline.serving.limits import Limits
from pipeline.serving.predictor import DEFAULT_BATCH, Predictor, image_files

log = logging.getLogger(__name__)
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def model_uri(ref: str) -> str | None:
    """The MLflow URI of ref (None for a local directory)."""
    if Path(ref).is_dir():
        return str(ref) if (Path(ref) / "MLmodel").is_file() else None
    if _URI.match(ref):
        return ref
    if "@" in ref:
        return f"models:/{ref}"
    raise MedpipeError(
        f"model {ref!r} is neither a directory nor <name>@<alias|version> nor an MLflow model URI "
        "(e.g. medpipe-idc@champion, models:/medpipe-idc/3, models/)"
    )


def load_predictor(ref: str, metrics_path: Path | None = None, threshold: float | None = None) -> Predictor:
    uri = model_uri(ref)
    if uri is None:
        metrics = manifest.read_json(metrics_path) if metrics_path and metrics_path.is_file() else None
        if metrics is None:
            log.warning("no metrics file (%s): labels use argmax, not the val-chosen threshold", metrics_path)
        else:  # evaluate's detail beside it says whether it used TTA
            detail = metrics_path.with_name("diagnostics.json")
            metrics = (manifest.read_json(detail) if detail.is_file() else {}) | metrics
        predictor = Predictor.from_dir(Path(ref), metrics)
    else:
        import mlflow

        from pipeline.registry import client as registry
        from pipeline.registry.lineage import _registry_cfg

        mlflow.set_tracking_uri(registry.tracking_uri(_registry_cfg()))
        try:
            loaded = mlflow.pyfunc.load_model(uri)
        except Exception as exc:  # noqa: BLE001 - MLflow raises many types for a missing model
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise MedpipeError(f"cannot load MLflow model {uri}: {first}") from exc
        from pipeline.serving.pyfunc_model import check_contract

        schema = loaded.metadata.get_input_schema()
        predictor = getattr(loaded.unwrap_python_model(), "predictor", None)
        if predictor is not None and schema is not None:
            check_contract(schema.input_names(), uri)
        if predictor is None:
            raise MedpipeError(
                f"{uri} is not a medpipe pyfunc model (registered before MLflow model logging?)"
            )
    if threshold is not None:
        predictor.cfg = dataclasses.replace(predictor.cfg, threshold=float(threshold))
    log.info(
        "model %s: classes %s, threshold %s", ref, ", ".join(predictor.cfg.classes), predictor.cfg.threshold
    )
    return predictor


class FileBytes(Sequence):
    """The files' bytes, read one slice (a batch) at a time and checked against the limits."""

    def __init__(self, files: list[Path], limits: Limits):
        self.files, self.limits = files, limits

    def __len__(self) -> int:
        return len(self.files)

    def _read(self, path: Path) -> bytes:
        data = path.read_bytes()
        self.limits.check_image(data, str(path))
        return data

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self._read(p) for p in self.files[index]]
        return self._read(self.files[index])


def predict_files(predictor: Predictor, inputs: list[str], batch_size: int = DEFAULT_BATCH) -> pd.DataFrame:
    files = image_files(inputs)
    if not files:
        raise MedpipeError("no image files to score")
    paths = [str(p) for p in files]
    scores = predictor.predict(FileBytes(files, Limits.from_env()), batch_size, names=paths)
    return pd.concat([pd.DataFrame({"path": paths}), scores], axis=1)


def write_heatmaps(table: pd.DataFrame, predictor: Predictor, out_dir: Path) -> list[Path]:
    """One PNG per IDC patient: truth (from the file name) beside predicted P(positive)."""
    from pipeline.evaluation.heatmap import heatmap_figure
    from pipeline.formats.idc import CLASSES, NAME_RE

    cfg = predictor.cfg
    if cfg.positive is None:
        raise MedpipeError("--heatmap needs a binary model with a positive class")
    names = table["path"].map(lambda p: NAME_RE.match(Path(p).name))
    located = table[names.notna()].copy()
    if located.empty:
        log.warning("--heatmap: no file name matches <pid>_idx5_x<X>_y<Y>_class<C>.png; no heat map written")
        return []
    parts = names[names.notna()]
    located["patient_id"] = [m["pid"] for m in parts]
    located["x"], located["y"] = [int(m["x"]) for m in parts], [int(m["y"]) for m in parts]
    truth = np.array([CLASSES[int(m["c"])] == cfg.positive for m in parts])
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for pid in sorted(located["patient_id"].unique()):
        rows = (located["patient_id"] == pid).to_numpy()
        patient = located[rows].reset_index(drop=True)
        fig = heatmap_figure(patient, patient[f"p_{cfg.positive}"].to_numpy(), truth[rows])
        if fig is not None:
            path = out_dir / f"{pid}.png"
            path.write_bytes(base64.b64decode(fig[1]))
            written.append(path)
    log.info("wrote %d slide heat map(s) to %s", len(written), out_dir)
    return written


def format_table(table: pd.DataFrame, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(table.to_dict(orient="records"), indent=2)
    if fmt == "csv":
        return table.to_csv(index=False, float_format="%.6g")
    return table.to_string(index=False, float_format=lambda v: f"{v:.4f}")


def main(args) -> int:
    predictor = load_predictor(args.model, Path(args.metrics) if args.metrics else None, args.threshold)
    table = predict_files(predictor, args.inputs, args.batch_size)
    if args.heatmap:
        write_heatmaps(table, predictor, Path(args.heatmap))
    fmt = "json" if args.json else "csv" if args.csv else "table"
    sys.stdout.write(format_table(table, fmt).rstrip("\n") + "\n")
    return 0
