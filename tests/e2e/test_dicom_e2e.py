"""End to end on DICOM: one `dvc repro` through register on synthetic films (helpers.dicom_films).

The source holds two classes of films from 16 patients covering the decode cases (MONOCHROME1
and 2, 12-bit in 16, signed with a CT rescale, a window, RLE and JPEG 2000 compressed, preamble-less,
PACS names without .dcm, one 3-frame file under data.dicom.frames: each) and the bad inputs of
issue #18 (a `.dcm` that is not DICOM, no PatientID, a structured report, a DICOMDIR, a suffix-less
non-DICOM file). PHI-looking values are planted in every header; none may reach an output.
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
import yaml
from helpers.dicom_films import PHI, film
from helpers.git_dvc_project import GIT_ENV, make_git_dvc_project, merge
from pydicom.uid import BasicTextSRStorage, MediaStorageDirectoryStorage

VARIANTS = [
    {},
    {"photometric": "MONOCHROME1"},
    {"bits_stored": 12, "syntax": "rle"},
    {"bits_stored": 12, "syntax": "j2k", "window": (2048, 4096)},
    {"bits_stored": 12, "photometric": "MONOCHROME1", "preamble": False},
]


def _picture(label: int, seed: int, bits: int) -> np.ndarray:
    """A 40x40 film: a bright disc for class 1 (learnable), noise for both."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:40, :40]
    disc = ((yy - 20) ** 2 + (xx - 20) ** 2 < 100) * (0.5 if label else 0.0)
    img = np.clip(0.25 + disc + rng.normal(0, 0.08, (40, 40)), 0, 1)
    return np.rint(img * (2**bits - 1)).astype(np.uint16)


def _source(root: Path) -> None:
    for label, cls in enumerate(("NORMAL", "PNEUMONIA")):
        for p in range(8):
            patient = f"MRN-{cls[:2]}{p:03d}"
            for i, kw in enumerate(VARIANTS):
                bits = kw.get("bits_stored", 16)
                px = _picture(label, 100 * p + i + 1000 * label, bits)
                if kw.get("photometric") == "MONOCHROME1":
                    px = (2**bits - 1 - px).astype(np.uint16)
                name = f"IM{p:02d}{i:02d}" if i == 4 else f"{p}_{i}.dcm"
                folder = root / cls / f"case{p:03d}"  # PHI lives in the headers only, not in paths
                folder.mkdir(parents=True, exist_ok=True)
                (folder / name).write_bytes(film(px, patient=patient, **kw))
            signed = (_picture(label, 7 + p, 11).astype(np.int16) - 1024).astype(np.int16)
            ct = film(signed, patient=patient, bits_stored=12, rescale=(1.0, -1024.0), modality="CT")
            (folder / f"{p}_ct.dcm").write_bytes(ct)
    frames = np.stack([_picture(1, 900 + k, 12) for k in range(3)])
    (root / "PNEUMONIA" / "multi").mkdir(parents=True)
    (root / "PNEUMONIA" / "multi" / "cine.dcm").write_bytes(film(frames, patient="MRN-MULTI", bits_stored=12))
    bad = root / "NORMAL" / "bad"
    bad.mkdir()
    (bad / "fake.dcm").write_bytes(b"<html>403 Forbidden</html>" * 20)
    (bad / "nopatient.dcm").write_bytes(film(_picture(0, 5, 16), patient=None))
    (bad / "report.dcm").write_bytes(
        film(_picture(0, 5, 16), with_pixels=False, sop_class=BasicTextSRStorage)
    )
    (bad / "DICOMDIR").write_bytes(
        film(_picture(0, 5, 16), with_pixels=False, sop_class=MediaStorageDirectoryStorage)
    )
    (bad / "IM9999").write_bytes(b"not a dicom file at all\n" * 10)


@pytest.fixture(scope="module")
def repro(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("dicom-e2e")
    _source(tmp / "source")
    env = dict(os.environ, **GIT_ENV, MEDPIPE_PSEUDONYM_KEY="e2e-dicom-key-0123456789")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env.pop("MLFLOW_TRACKING_URI", None)
    work = make_git_dvc_project(tmp / "proj", "e2e-dicom", env)
    params = yaml.safe_load((work / "params.yaml").read_text())
    merge(params, {
        "data": {"source": str(tmp / "source"), "format": "dicom", "dicom": {"frames": "each"}},
        "validate": {"max_quarantine_fraction": 0.1},
        "preprocess": {"image_size": 32, "channels": 1},
        "split": {"val_fraction": 0.25, "test_fraction": 0.25},
    })  # fmt: skip
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", "repro"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    (work / "repro.log").write_text(proc.stdout + proc.stderr)
    return work


def test_dicom_films_run_through_register_with_true_reasons_and_no_phi(repro):
    work = repro
    assert json.loads((work / "reports/registered.json").read_text())["model_name"] == "e2e-dicom"
    manifest = pd.read_csv(work / "data/interim/manifest.csv")
    good = manifest[manifest["format_error"].isna()]
    assert len(good) == 2 * 8 * (len(VARIANTS) + 1) + 3  # every film + the 3 frames of cine.dcm
    assert good["patient_id"].str.fullmatch(r"P[0-9a-f]{20}").all() and good["patient_id"].nunique() == 17
    assert {"MONOCHROME1", "MONOCHROME2"} == set(good["photometric"]) and {12, 16} == set(good["bits_stored"])
    assert {"1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.90"} <= set(good["transfer_syntax"])
    cine = good[good["source_file"].fillna("").str.endswith("cine.dcm")]
    assert sorted(cine["frame"]) == [0, 1, 2] and set(cine["frames"]) == {1}
    quarantine = pd.read_csv(work / "reports/validation/quarantine.csv")
    reasons = dict(zip(quarantine["path"].str.rsplit("/", n=1).str[-1], quarantine["detail"], strict=True))
    assert reasons == {
        "fake.dcm": "not a DICOM file (no DICM marker at byte 128)",
        "nopatient.dcm": "no PatientID in the header",
    }
    skipped = pd.read_csv(work / "data/interim/skipped.csv")
    why = dict(zip(skipped["path"].str.rsplit("/", n=1).str[-1], skipped["reason"], strict=True))
    assert (
        why["report.dcm"].startswith("DICOM without pixel data")
        and why["IM9999"] == "no suffix and not DICOM"
    )
    assert why["DICOMDIR"] == "DICOMDIR (a media index, no image)"
    assert json.loads((work / "data/interim/intensity.json").read_text())["window"] is not None
    planted = [*PHI.values(), "MRN-NO", "MRN-PN", "MRN-MULTI"]
    outputs = [
        work / "dvc.lock",
        work / "repro.log",
        *(work / "reports").rglob("*"),
        *(work / "models").rglob("*.json"),
    ]
    outputs += [p for p in (work / "data").rglob("*") if p.suffix in (".csv", ".json", ".html")]
    leaks = [(p.name, v) for p in outputs if p.is_file() for v in planted if v.encode() in p.read_bytes()]
    assert leaks == []
