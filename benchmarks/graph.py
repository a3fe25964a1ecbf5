"""Run the real stage graph of dvc.yaml in a scratch project (benchmarks; not a test, not DVC).

`run_graph(params, until="evaluate")` writes params.yaml into the current directory and calls
`medpipe stage` in-process for every stage of dvc.yaml in order, with the -i/-o paths dvc.yaml
declares, so a benchmark follows the graph as it changes (a new stage included). `val_scores`
predicts the val split with the trained model for choosing configurations (never test).
"""

from __future__ import annotations

import logging
import resource
import shlex
import time
from pathlib import Path

import numpy as np
import yaml
from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score, roc_curve

from pipeline import config
from pipeline.cli import stage_runner
from pipeline.core import dvc_files, manifest

log = logging.getLogger("benchmarks.graph")
ROOT = Path(__file__).resolve().parents[1]


def stage_io(cmd: str) -> tuple[str, dict[str, Path], dict[str, Path]]:
    """'medpipe stage train -i a=x -o b=y' -> ('train', {'a': x}, {'b': y})."""
    words = shlex.split(cmd)
    name = words[words.index("stage") + 1]
    ins: dict[str, Path] = {}
    outs: dict[str, Path] = {}
    for flag, value in zip(words, words[1:], strict=False):
        if flag in ("-i", "-o"):
            key, _, path = value.partition("=")
            (ins if flag == "-i" else outs)[key] = Path(path)
    return name, ins, outs


def cpu_seconds() -> float:
    """CPU time (user + system, all threads) of this process so far: with the machine shared,
    CPU seconds / cores estimates the wall time on an idle machine of that many cores."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_graph(params: dict, until: str = "evaluate", dvc_yaml: Path = ROOT / "dvc.yaml") -> dict[str, float]:
    """Run every stage up to `until` in the current directory; {stage: seconds, stage_cpu: CPU seconds}."""
    config.from_dict(params)
    Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    seconds: dict[str, float] = {}
    for stage, spec in dvc_files.stages(dvc_yaml).items():
        name, ins, outs = stage_io(spec["cmd"])
        t0, c0 = time.perf_counter(), cpu_seconds()
        stage_runner.run_stage(name, Path("params.yaml"), ins, outs)
        seconds[stage] = round(time.perf_counter() - t0, 1)
        seconds[f"{stage}_cpu"] = round(cpu_seconds() - c0, 1)
        log.info("stage %s: %.1f s", stage, seconds[stage])
        if stage == until:
            break
    return seconds


def _youden(y: np.ndarray, p: np.ndarray) -> float:
    fpr, tpr, thr = roc_curve(y, p)
    return float(min(thr[np.argmax(tpr - fpr)], 1.0))


def val_scores(tta: bool) -> dict:
    """Val figures of models/ on data/splits/val.csv: binary -> auc, acc (Youden on val);
    multi-class -> balanced accuracy, macro AUC (one-vs-rest), acc."""
    from pipeline.evaluation.predictions import Task, load_model, predict_split

    label_map = manifest.read_json("models/label_map.json")
    task = Task.from_label_map(label_map)
    df = manifest.read("data/splits/val.csv")
    cfg = config.from_dict({"evaluate": {"tta": tta}}).evaluate
    pred = predict_split(load_model(Path("models/model.keras")), label_map, df, cfg, "val")
    if task.positive is not None:
        y, p = (pred.y == task.positive).astype(int), pred.proba[:, task.positive]
        return {
            "auc": round(float(roc_auc_score(y, p)), 4),
            "acc": round(float(accuracy_score(y, p >= _youden(y, p))), 4),
        }
    y_hat = pred.proba.argmax(1)
    return {
        "balanced_accuracy": round(float(balanced_accuracy_score(pred.y, y_hat)), 4),
        "macro_auc": round(float(roc_auc_score(pred.y, pred.proba, multi_class="ovr")), 4),
        "acc": round(float(accuracy_score(pred.y, y_hat)), 4),
    }
