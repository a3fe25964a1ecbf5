"""data.format table end to end, with planted PHI: one `dvc repro` through register, then the nightly
flow, on a tiny label table whose patient, name and accession cells are distinctive strings, over
PNG files and DICOM files (pydicom-written) whose headers carry planted PHI too (PatientID,
PatientName, PatientBirthDate, AccessionNumber, InstitutionName, ReferringPhysicianName, StudyDate).
Some DICOM rows have no patient cell: their patient is pseudonym(header PatientID), and a patient
named by a cell for one film and by the header for the others stays one patient.

One run covers both cases of issue #18 for tables:
  - every bad row of a table (missing file, empty label, repeated row, two labels, two patient ids,
    no patient id, ../ and absolute paths, an image the table does not list) has one counted outcome
    with its true reason in skipped.csv or the quarantine;
  - no planted value appears in any file the run wrote (data/raw, .dvc/cache, .venv, .git are input:
    tests/helpers/phi_scan.py), in dvc's and the flow's captured output, in Prefect's logs and
    artifacts, in the MLflow store, or in the committed git history. A positive control shows the
    same scan finds every planted value in data/raw.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml
from helpers.dicom_films import film
from helpers.git_dvc_project import GIT_ENV, make_git_dvc_project, merge
from helpers.phi_scan import git_history, scan_project, scan_texts

HEADER_PHI = {  # planted in every DICOM header besides PatientID/PatientName/AccessionNumber
    "PatientBirthDate": "19230405",
    "InstitutionName": "Inst PHI-Hosp 31",
    "ReferringPhysicianName": "Ref^PHI^Doc",
    "StudyDate": "18991231",
}
NEEDLES = ["MRN-PHI-77", "Doe^Jane", "ACC-PHI-55", "19230405", "PHI-Hosp", "Ref^PHI", "18991231"]
CLASSES = ("effusion", "normal")
PATIENTS_PER_CLASS, IMAGES_PER_PATIENT = 8, 3
COLUMNS = ["Image Path", "Finding", "MRN", "Patient Name", "Accession"]
DICOM_PATIENTS = {0, 1, 4, 5, 8, 9, 12, 13}  # their films are .dcm, the others' .png
HEADER_ONLY = {0: (0, 1, 2), 1: (1, 2), 8: (0, 1, 2), 9: (1, 2)}  # patient: films without a patient cell


def _png(seed: int) -> bytes:
    img = np.random.default_rng(seed).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    return cv2.imencode(".png", img)[1].tobytes()


def _dcm(seed: int, n: int | None) -> bytes:
    """A 32x32 8-bit film whose header carries patient n's planted identifiers (no PatientID: None)."""
    img = np.random.default_rng(seed).integers(0, 255, (32, 32), dtype=np.uint8)
    phi = {"PatientName": f"Doe^Jane PHI {n}", "AccessionNumber": f"ACC-PHI-55{n}", **HEADER_PHI}
    return film(img, patient=None if n is None else f"MRN-PHI-77{n:02d}", header=phi)


def _row(path: str, label: str, n: int | None, cell: bool = True) -> tuple:
    mrn = "" if n is None or not cell else f"MRN-PHI-77{n:02d}"
    return (path, label, mrn, f"Doe^Jane PHI {n}", f"ACC-PHI-55{n}")


def write_source(tmp: Path) -> Path:
    """48 good rows of 16 patients (8 of them DICOM, some without a patient cell), the bad rows,
    an unlisted image and a file just outside."""
    source = tmp / "source"
    rows, seed, owner = [], 0, {}
    for c, label in enumerate(CLASSES):
        for p in range(PATIENTS_PER_CLASS):
            n = c * PATIENTS_PER_CLASS + p
            suffix = "dcm" if n in DICOM_PATIENTS else "png"
            for k in range(IMAGES_PER_PATIENT):
                owner[f"images/p{n:02d}_{k}.{suffix}"] = n
                rows.append(_row(f"images/p{n:02d}_{k}.{suffix}", label, n, k not in HEADER_ONLY.get(n, ())))
    owner["images/nopatient.dcm"] = None
    rows += [
        _row("images/p02_0.png", "effusion", 2),  # row 49: repeats row 7
        _row("images/missing.png", "normal", 90),  # row 50
        _row("images/nolabel.png", "", 91),  # row 51
        _row("images/twolabels.png", "normal", 92),  # rows 52, 53
        _row("images/twolabels.png", "effusion", 92),
        _row("images/twopatients.png", "normal", 93),  # rows 54, 55
        _row("images/twopatients.png", "normal", 94),
        _row("images/nopatient.png", "effusion", None),  # row 56
        _row("images/nopatient.dcm", "effusion", None),  # row 57: no cell, no PatientID
        _row("../outside.png", "normal", 95),  # row 58
        _row("/etc/hostname", "normal", 96),  # row 59
    ]
    files = {r[0] for r in rows if not r[0].startswith(("..", "/"))} - {"images/missing.png"}
    for rel in sorted(files | {"images/unlisted.png"}):
        (source / rel).parent.mkdir(parents=True, exist_ok=True)
        seed += 1
        (source / rel).write_bytes(_dcm(seed, owner[rel]) if rel.endswith(".dcm") else _png(seed))
    (tmp / "outside.png").write_bytes(_png(999))  # exists: the ../ row must not reach it
    pd.DataFrame(rows, columns=COLUMNS).to_csv(source / "labels.csv", index=False)
    return source


@pytest.fixture
def project(tmp_path, monkeypatch) -> tuple[Path, dict]:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MEDPIPE_PSEUDONYM_KEY", raising=False)  # the key file is created (one line)
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    work = make_git_dvc_project(tmp_path / "proj", "table-phi", env)
    params = yaml.safe_load((work / "params.yaml").read_text())
    table = {
        "file": "labels.csv",
        "path_column": "Image Path",
        "label_column": "Finding",
        "patient_column": "MRN",
    }
    data = {"source": str(write_source(tmp_path)), "format": "table", "table": table}
    merge(params, {"data": data, "validate": {"max_quarantine_fraction": 0.1}})
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git = ["git", "commit", "-qam", "table params"]
    subprocess.run(git, cwd=work, env=env, check=True, capture_output=True)
    return work, env


def assert_bad_rows(work: Path) -> None:
    skipped = pd.read_csv(work / "data/interim/skipped.csv", keep_default_na=False)
    assert sorted(zip(skipped["path"], skipped["reason"], skipped["detail"], strict=True)) == [
        ("../outside.png", "path leaves data.source (../)", "labels.csv row 58"),
        ("/etc/hostname", "path leaves data.source (absolute)", "labels.csv row 59"),
        ("data/raw/images/nolabel.png", "label empty in the table", "labels.csv row 51"),
        ("data/raw/images/unlisted.png", "not in the table", ""),
        ("data/raw/labels.csv", "the label table (data.table.file)", ""),
        ("images/missing.png", "listed in the table, no such file in data/raw", "labels.csv row 50"),
        (
            "images/p02_0.png",
            "duplicate table row (same path and label)",
            "labels.csv row 49; row 7 labels the file",
        ),
    ]
    quarantine = pd.read_csv(work / "reports/validation/quarantine.csv", keep_default_na=False)
    assert sorted(zip(quarantine["path"], quarantine["reason"], quarantine["detail"], strict=True)) == [
        (
            "data/raw/images/nopatient.dcm",
            "bad-name",
            "no patient id in column MRN (row 57) nor a PatientID in the DICOM header",
        ),
        ("data/raw/images/nopatient.png", "bad-name", "no patient id in column MRN (row 56)"),
        (
            "data/raw/images/twolabels.png",
            "bad-name",
            "the table gives this file 2 labels: normal (row 52), effusion (row 53)",
        ),
        (
            "data/raw/images/twopatients.png",
            "bad-name",
            "the table gives this file different patient ids (rows 54, 55)",
        ),
    ]
    validated = pd.read_csv(work / "data/interim/validated.csv")
    assert len(validated) == len(CLASSES) * PATIENTS_PER_CLASS * IMAGES_PER_PATIENT
    assert validated["patient_id"].str.fullmatch(r"P[0-9a-f]{20}").all()
    assert validated["patient_id"].nunique() == len(CLASSES) * PATIENTS_PER_CLASS
    # one pseudonym per patient, whether a cell or the DICOM header (or both) named the patient
    per_patient = validated.groupby(validated["path"].str.extract(r"/(p\d\d)_", expand=False))["patient_id"]
    assert (per_patient.nunique() == 1).all() and len(per_patient) == len(CLASSES) * PATIENTS_PER_CLASS
    assert validated["path"].str.endswith(".dcm").sum() == len(DICOM_PATIENTS) * IMAGES_PER_PATIENT


def prefect_texts(flow_run_id) -> dict[str, str]:
    """The flow run's logs and artifacts as Prefect's API serves them."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        LogFilter,
        LogFilterFlowRunId,
    )

    texts, offset = {}, 0
    with get_client(sync_client=True) as client:
        log_filter = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
        while page := client.read_logs(log_filter=log_filter, limit=200, offset=offset):
            texts[f"prefect logs {offset}+"] = "\n".join(log.message for log in page)
            offset += len(page)
        art_filter = ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        for a in client.read_artifacts(artifact_filter=art_filter):
            texts[f"prefect artifact {a.key}"] = f"{a.description}\n{a.data}"
    assert offset > 0 and len(texts) > 1, "the flow run left no logs or artifacts to scan"
    return texts


def test_table_with_planted_phi_through_register_and_the_nightly_flow(prefect_harness, project, capfd):
    work, env = project
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", "repro"], cwd=work, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, f"dvc repro failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert (work / "reports/registered.json").is_file()
    output = proc.stdout + proc.stderr
    assert len(re.findall(r"no pseudonym key .* created \.medpipe/pseudonym\.key", output)) == 1
    assert_bad_rows(work)

    from flows.nightly_retrain import nightly_retrain

    state = nightly_retrain(project_dir=str(work), push=False, network_retry_delay_s=1.0, return_state=True)
    assert state.is_completed(), state.message
    flow_output = capfd.readouterr()
    git = subprocess.run(["git", "ls-files"], cwd=work, capture_output=True, text=True, check=True).stdout
    assert ".medpipe" not in git  # the key never enters git

    texts = {"dvc repro stdout": proc.stdout, "dvc repro stderr": proc.stderr}
    texts |= {
        "flow stdout": flow_output.out,
        "flow stderr": flow_output.err,
        "git history": git_history(work),
    }
    texts |= prefect_texts(state.state_details.flow_run_id)
    hits = scan_project(work, NEEDLES) + scan_texts(texts, NEEDLES)
    assert not hits, "PHI in outputs:\n" + "\n".join(map(str, hits[:20]))
    # positive control: the same scan sees every planted value where the input lies
    control = {h.needle for h in scan_project(work / "data/raw", NEEDLES, skipped=())}
    assert control == set(NEEDLES)
    print(
        f"\n[figure] PHI scan: 0 hits in {sum(1 for p in work.rglob('*') if p.is_file())} files + {len(texts)} texts"
    )
