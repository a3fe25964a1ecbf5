"""register with S3 artifacts on a moto server: artifacts land in the bucket, a dead store leaves no version."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from helpers.register_inputs import INPUTS, OUTPUTS, cfg, metrics, write_register_inputs
from mlflow import MlflowClient
from moto.server import ThreadedMotoServer

from pipeline.core.errors import MedpipeError
from pipeline.stages import register

SECRET = "s3cr3t-DO-NOT-LEAK-9f2c"
BUCKET = "medpipe-models"


@pytest.fixture
def s3(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ThreadedMotoServer, str]]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing-key-id",
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_MAX_ATTEMPTS": "1",
        "MLFLOW_S3_ENDPOINT_URL": endpoint,
        "MLFLOW_TRACKING_URI": f"sqlite:///{in_tmp / 'mlflow.db'}",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MEDPIPE_LINEAGE_DB", raising=False)
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
    try:
        yield server, endpoint
    finally:
        server.stop()


def test_artifacts_land_in_bucket_and_dead_store_registers_nothing(
    s3: tuple[ThreadedMotoServer, str], in_tmp: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server, endpoint = s3
    caplog.set_level(logging.DEBUG, logger="pipeline")
    write_register_inputs(in_tmp, metrics(0.8))
    settings = cfg(artifact_uri=f"s3://{BUCKET}/registry")
    rec = register.run(settings, INPUTS, OUTPUTS)
    keys = {
        o["Key"] for o in boto3.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket=BUCKET)["Contents"]
    }
    assert any(
        k.startswith("registry/") and k.endswith("/artifacts/model/artifacts/model.keras") for k in keys
    )
    assert any(k.endswith("/artifacts/model/artifacts/label_map.json") for k in keys)
    assert any(k.endswith("/artifacts/data/splits/test.csv") for k in keys)
    client = MlflowClient()
    version = client.get_model_version("m", rec["version"])
    assert version.source.startswith(f"s3://{BUCKET}/registry/")

    server.stop()  # the artifact store goes away: the next registration must fail cleanly
    write_register_inputs(in_tmp, metrics(0.85))  # another model: an identical one would register nothing
    with pytest.raises(MedpipeError, match="could not store run artifacts"):
        register.run(settings, INPUTS, OUTPUTS)
    assert [str(v.version) for v in client.search_model_versions("name='m'")] == ["1"]
    assert str(client.get_model_version_by_alias("m", "challenger").version) == "1"
    failed = client.search_runs([client.get_run(version.run_id).info.experiment_id])
    assert sorted(r.info.status for r in failed) == ["FAILED", "FINISHED"]

    recorded = json.dumps([version.tags, client.get_run(version.run_id).data.params]) + caplog.text
    recorded += (in_tmp / "reports/registered.json").read_text()
    assert SECRET not in recorded and "testing-key-id" not in recorded
