"""Fixtures of every tier. Tests that need ../shared skip when it is absent; servers (moto, Prefect)
start once per session, on first use, with their imports inside the fixture (collection stays fast)."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED = PROJECT_ROOT.parent / "shared"


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is not present on this machine")
    return SHARED


@pytest.fixture
def samples_dir(shared_dir: Path) -> Path:
    path = shared_dir / "samples"
    if not path.is_dir():
        pytest.skip("../shared/samples is not present on this machine")
    return path


@pytest.fixture
def medmnist_dir(shared_dir: Path) -> Path:
    path = shared_dir / "datasets" / "medmnist"
    if not path.is_dir():
        pytest.skip("../shared/datasets/medmnist is not present on this machine")
    return path


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty project root: manifest paths are relative to the working directory."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def moto_endpoint():
    """moto's real S3 server on 127.0.0.1 (a random port), for boto3, DVC and MLflow clients; tests keep
    apart by bucket name."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials for moto; nothing from the real AWS chain (profile, token, endpoint)."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    for key in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_MAX_ATTEMPTS",
    ):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect server (SQLite) for the session; PREFECT_API_URL points at it meanwhile."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
