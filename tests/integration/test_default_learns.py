"""The README's first command trains params.yaml's defaults on the embedded sample: they must learn.

A fresh `dvc repro` once finished with a flat training loss (a constant prediction, test ROC AUC
.51) and exit code 0, because nothing checked that the default model learns. This trains the
committed train section (model, augmentation, optimiser, class weights as the balance stage
writes them) for 3 epochs on a small patient-split subset of the same synthetic sample.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from pipeline import config
from pipeline.config import SampleConfig
from pipeline.sources import sample

ROOT = Path(__file__).resolve().parents[2]


def _write_sample(root: Path) -> pd.DataFrame:
    cfg = SampleConfig(patients=8, patches_per_patient=80, positive_fraction=0.28, seed=5)
    rows = []
    for patch, png in sample.generate(cfg):
        path = root / "raw" / patch.relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
        rows.append({"path": path.as_posix(), "label": patch.label, "patient_id": patch.patient_id})
    df = pd.DataFrame(rows)
    df["class_name"] = df["label"].map({0: "0", 1: "1"})
    return df


def test_default_train_params_learn_the_sample(in_tmp):
    from pipeline.stages import preprocess, train

    df = _write_sample(Path("data"))
    patients = sorted(df["patient_id"].unique())
    val_patients = patients[::4]  # 2 of 8 patients, never in train
    val = df[df["patient_id"].isin(val_patients)]
    tr = df[~df["patient_id"].isin(val_patients)]
    assert set(val["label"]) == {0, 1} and set(tr["label"]) == {0, 1}
    for d in ("data/balanced", "data/splits"):
        Path(d).mkdir(parents=True)
    tr.to_csv("data/balanced/train.csv", index=False)
    val.to_csv("data/splits/val.csv", index=False)
    val.to_csv("data/splits/test.csv", index=False)
    counts = tr["label"].value_counts()
    weights = {str(c): float((len(tr) - counts[c]) / len(tr)) for c in (0, 1)}  # w_c = n_other / N
    Path("data/balanced/class_weights.json").write_text(
        json.dumps({"strategy": "class_weight", "weights": weights})
    )
    Path("data/labels.json").write_text(json.dumps({"format": "idc", "classes": ["0", "1"], "positive": "1"}))

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["train"]["epochs"] = 3
    cfg = config.from_dict(raw)
    assert cfg.train.model == "baseline_cnn" and cfg.preprocess.image_size == 50  # what the README runs
    preprocess.run(
        cfg,
        {"balanced": Path("data/balanced"), "splits": Path("data/splits")},
        {"preprocessed": Path("data/preprocessed")},
    )
    outs = {"model": Path("models"), "history": Path("history.csv"), "checkpoints": Path("checkpoints")}
    inputs = {
        "preprocessed": Path("data/preprocessed"),
        "balanced": Path("data/balanced"),
        "labels": Path("data/labels.json"),
    }
    train.train(cfg, inputs, outs)
    hist = pd.read_csv(outs["history"])
    # the best constant prediction (p = 0.5 under these weights) scores 2 n0 n1 / N^2 ln 2 (~0.28)
    n0, n1 = counts[0], counts[1]
    constant_loss = 2 * n0 * n1 / len(tr) ** 2 * np.log(2)
    assert hist["loss"].iloc[-1] < 0.8 * constant_loss, hist.to_string()
    assert hist["val_auc"].max() > 0.85, hist.to_string()
