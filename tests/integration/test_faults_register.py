"""register with MLflow artifacts on S3 behind the fault proxy: throttled uploads retry or register nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from helpers.register_inputs import INPUTS, MODEL_ARTIFACTS, OUTPUTS, cfg, metrics, write_register_inputs
from helpers.s3_faults import FaultPolicy, FaultProxy
from mlflow import MlflowClient

from pipeline.core.errors import MedpipeError
from pipeline.stages import register

BUCKET = "faults-registry"


@pytest.fixture
def store(moto_endpoint: str, in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """sqlite registry in tmp, artifacts on moto through a fresh FaultProxy (no faults yet)."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_MAX_ATTEMPTS": "2",  # a persistent fault fails after one retry instead of MLflow's default
        "MLFLOW_TRACKING_URI": f"sqlite:///{in_tmp / 'mlflow.db'}",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MEDPIPE_LINEAGE_DB", raising=False)
    s3 = boto3.client("s3", endpoint_url=moto_endpoint)
    if BUCKET not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=BUCKET)
    proxy = FaultProxy(moto_endpoint, FaultPolicy())
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", proxy.url)  # a new URL: MLflow builds a new boto3 client
    try:
        yield proxy
    finally:
        proxy.stop()


def test_persistent_upload_throttling_registers_nothing(store: FaultProxy, in_tmp: Path) -> None:
    write_register_inputs(in_tmp, metrics(0.8))
    settings = cfg(artifact_uri=f"s3://{BUCKET}/persistent-{in_tmp.name}")
    first = register.run(settings, INPUTS, OUTPUTS)
    record = (in_tmp / "reports/registered.json").read_text()

    write_register_inputs(in_tmp, metrics(0.9))  # would be promoted, if it could be stored
    store.policy = FaultPolicy(throttle_all=True, target="write")  # every upload: 503 SlowDown / 429
    with pytest.raises(MedpipeError, match="could not store run artifacts") as err:
        register.run(settings, INPUTS, OUTPUTS)
    assert "\n" not in str(err.value) and store.policy.throttled >= 2
    client = MlflowClient()
    assert [str(v.version) for v in client.search_model_versions("name='m'")] == [first["version"]]
    assert str(client.get_model_version_by_alias("m", "champion").version) == first["version"]
    assert str(client.get_model_version_by_alias("m", "challenger").version) == first["version"]
    assert (in_tmp / "reports/registered.json").read_text() == record  # no partial record either


def test_transient_upload_throttling_is_retried(store: FaultProxy, in_tmp: Path) -> None:
    write_register_inputs(in_tmp, metrics(0.8))
    store.policy = FaultPolicy(throttle_first=1, target="write")  # one throttled try, then fine
    rec = register.run(cfg(artifact_uri=f"s3://{BUCKET}/transient-{in_tmp.name}"), INPUTS, OUTPUTS)
    assert store.policy.throttled == 1 and rec["version"] == "1" and "champion" in rec["aliases"]
    client = MlflowClient()
    names = {a.path for a in client.list_artifacts(rec["run_id"], "model/artifacts")}
    assert names == {f"model/artifacts/{n}" for n in MODEL_ARTIFACTS}
