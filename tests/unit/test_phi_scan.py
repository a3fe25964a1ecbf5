"""The PHI scanner (tests/helpers/phi_scan.py) finds what is planted where outputs live, and only
there: the e2e PHI test's 0 hits mean something only if the scanner sees these places."""

from __future__ import annotations

import gzip
import sqlite3
import zipfile

from helpers.phi_scan import scan_project, scan_texts

NEEDLES = ["MRN-PHI-7731", "Doe^Jane"]


def test_scanner_finds_planted_values_in_outputs_and_skips_inputs(tmp_path):
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports/summary.json").write_text('{"patient": "mrn-phi-7731"}')  # any case
    (tmp_path / "reports/clean.txt").write_text("nothing here")
    (tmp_path / "reports/wide.txt").write_bytes("Doe^Jane".encode("utf-16-le"))
    with zipfile.ZipFile(tmp_path / "reports/model.keras", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("config.json", '{"name": "Doe^Jane PHI"}' * 20)  # deflated: only the member has it
    (tmp_path / "reports/log.gz").write_bytes(gzip.compress(b"id MRN-PHI-7731"))
    with sqlite3.connect(tmp_path / "mlflow.db") as con:
        con.execute("CREATE TABLE tags (key TEXT, value TEXT)")
        con.execute("INSERT INTO tags VALUES ('patient', 'MRN-PHI-7731')")
    con.close()
    for inputs in ("data/raw", ".dvc/cache", ".git", ".venv"):
        (tmp_path / inputs).mkdir(parents=True)
        (tmp_path / inputs / "labels.csv").write_text("MRN-PHI-7731,Doe^Jane")
    (tmp_path / "view.png").symlink_to(tmp_path / "data/raw/labels.csv")
    hits = scan_project(tmp_path, NEEDLES)
    found = {(h.where.split(" table ")[0], h.needle) for h in hits}
    assert found == {
        ("reports/summary.json", "MRN-PHI-7731"),
        ("reports/wide.txt", "Doe^Jane"),
        ("reports/model.keras!config.json", "Doe^Jane"),
        ("reports/log.gz!gunzip", "MRN-PHI-7731"),
        ("mlflow.db", "MRN-PHI-7731"),
    }
    assert any(h.where == "mlflow.db table tags" for h in hits)
    assert [str(h) for h in scan_texts({"stderr": "ok", "log": "x Doe^Jane y"}, NEEDLES)] == [
        "log: 'Doe^Jane' in ...x Doe^Jane y..."
    ]


def test_scanner_finds_values_inside_base64_at_every_alignment():
    """An MLflow input example or a JSON body carries image bytes as base64: a DICOM header in it
    must still be found (the plain-text scan cannot see it)."""
    import base64

    header = b"\x10\x00\x10\x00PN\x08\x00Doe^Jane\x10\x00\x20\x00LO\x0c\x00MRN-PHI-7731"
    for pad in range(3):
        blob = base64.b64encode(b"\x00" * (128 + pad) + b"DICM" + header).decode()
        hits = scan_texts({"example": f'{{"image": "{blob}"}}'}, NEEDLES)
        assert {h.needle for h in hits} == set(NEEDLES), pad
    assert not scan_texts({"clean": base64.b64encode(b"\x00" * 128 + b"DICM no phi").decode()}, NEEDLES)
