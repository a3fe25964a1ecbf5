"""The nightly report link: the MLflow artifact over http with a tracking server, file:// locally."""

from __future__ import annotations

from types import SimpleNamespace

import mlflow
from mlflow.entities import FileInfo

from flows.run_report import report_link

SERVER = "http://mlflow.example.org:5000"


class FakeTracking:
    """MlflowClient's get_run / list_artifacts for one run whose report sits in reports/."""

    def __init__(self, tracking_uri: str):
        assert tracking_uri == SERVER + "/"

    def get_run(self, run_id: str):
        return SimpleNamespace(info=SimpleNamespace(experiment_id="7", run_id=run_id))

    def list_artifacts(self, run_id: str, path: str | None = None):
        tree = {
            None: [FileInfo("model", True, None), FileInfo("reports", True, None)],
            "model": [FileInfo("model/MLmodel", False, 10)],
            "reports": [FileInfo("reports/report.html", False, 2048)],
        }
        return tree[path]


def test_report_link_points_to_the_mlflow_artifact_with_a_server(tmp_path, monkeypatch):
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "report.html").write_text("<html></html>")
    monkeypatch.setattr(mlflow, "MlflowClient", FakeTracking)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", SERVER + "/")
    link = report_link(str(tmp_path), {"run_id": "abc123"})
    assert link == f"{SERVER}/#/experiments/7/runs/abc123/artifactPath/reports/report.html"


def test_report_link_never_carries_tracking_credentials(tmp_path, monkeypatch):
    secret = "p/ss+w0rd"
    with_user = SERVER.replace("://", f"://bob:{secret}@")
    monkeypatch.setattr(mlflow, "MlflowClient", lambda tracking_uri: FakeTracking(SERVER + "/"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", with_user)
    link = report_link(str(tmp_path), {"run_id": "abc123"})
    assert secret not in link and link.startswith(SERVER.replace("://", "://***@"))


def test_report_link_is_the_local_file_with_a_local_store(tmp_path, monkeypatch):
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "report.html").write_text("<html></html>")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    assert report_link(str(tmp_path), {"run_id": "abc123"}) == (tmp_path / "reports/report.html").as_uri()
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    (tmp_path / "params.yaml").write_text("registry:\n  tracking_uri: sqlite:///mlflow.db\n")
    assert report_link(str(tmp_path), {"run_id": "abc123"}).startswith("file://")
    (tmp_path / "reports" / "report.html").unlink()
    assert report_link(str(tmp_path), {"run_id": "abc123"}) is None
