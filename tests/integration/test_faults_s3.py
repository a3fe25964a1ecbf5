"""S3 fault injection over real HTTP: a tiny proxy on 127.0.0.1 in front of moto's server.

The proxy forwards every request byte for byte to moto, except those its FaultPolicy picks:
- throttled ones get S3's real throttling answers (503 `SlowDown` XML, or 429 `ThrottlingException`);
- after `stop_after_gets` object downloads it "goes down": it stops the moto server behind it,
  closes its own listening socket (new connections are refused) and drops every open connection.
Nothing of medpipe is mocked: the S3 source's own boto3 client (retry config included) talks HTTP.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import boto3
import pytest
from helpers.s3_faults import FaultPolicy, FaultProxy
from moto.server import ThreadedMotoServer

from pipeline.config import DataConfig
from pipeline.core.errors import DataError
from pipeline.sources import STATE_NAME, sync
from pipeline.sources.s3 import DEFAULT_MAX_ATTEMPTS, make_client


@pytest.fixture
def proxied(moto_endpoint: str, aws_env, request) -> Iterator[tuple[FaultProxy, str]]:
    """A fresh bucket on the shared moto server and a FaultProxy in front of it (no faults yet)."""
    bucket = "faults-" + request.node.name.lower().replace("_", "-")[:40].strip("-[]")
    boto3.client("s3", endpoint_url=moto_endpoint).create_bucket(Bucket=bucket)
    proxy = FaultProxy(moto_endpoint, FaultPolicy())
    try:
        yield proxy, bucket
    finally:
        proxy.stop()


def fill(endpoint: str, bucket: str, n: int, tag: str = "v1", size: int = 2048) -> dict[str, bytes]:
    client = boto3.client("s3", endpoint_url=endpoint)
    blobs = {
        f"idc/{i % 5}/img{i:03d}.png": hashlib.sha256(f"{tag}{i}".encode()).digest() * (size // 32)
        for i in range(n)
    }
    for key, data in blobs.items():
        client.put_object(Bucket=bucket, Key=key, Body=data)
    return blobs


def cfg(url: str, endpoint: str, workers: int = 4) -> DataConfig:
    return replace(DataConfig(), source=url, s3_endpoint_url=endpoint, s3_workers=workers)


def on_disk(raw: Path) -> dict[str, bytes]:
    return {
        p.relative_to(raw).as_posix(): p.read_bytes()
        for p in raw.rglob("*")
        if p.is_file() and p.name != STATE_NAME
    }


def no_leftovers(tmp: Path) -> bool:
    return not [p for p in tmp.iterdir() if p.name.startswith(".raw.staging-")]


def test_retry_config_is_standard_or_adaptive_with_a_sensible_attempt_count() -> None:
    retries = make_client(None, 4).meta.config.retries
    assert retries["mode"] in ("standard", "adaptive")
    assert retries["total_max_attempts"] == DEFAULT_MAX_ATTEMPTS and 3 <= DEFAULT_MAX_ATTEMPTS <= 10


def test_transient_throttling_is_retried_to_identical_bytes(proxied, moto_endpoint, tmp_path) -> None:
    proxy, bucket = proxied
    blobs = fill(moto_endpoint, bucket, 30)
    proxy.policy = FaultPolicy(throttle_first=3, throttle_fraction=0.25, seed=7)  # 503 SlowDown and 429s
    raw = tmp_path / "raw"
    summary = sync(cfg(f"s3://{bucket}/idc", proxy.url), raw)
    assert proxy.policy.throttled >= 8, proxy.policy  # the faults really happened ...
    assert summary.copied == 30  # ... and every object still arrived, byte for byte
    assert on_disk(raw) == {k.removeprefix("idc/"): v for k, v in blobs.items()}
    assert {rel: rec.sha256 for rel, rec in summary.files.items()} == {
        k.removeprefix("idc/"): hashlib.sha256(v).hexdigest() for k, v in blobs.items()
    }
    assert no_leftovers(tmp_path)


def test_persistent_throttling_fails_cleanly_and_keeps_previous_raw(
    proxied, moto_endpoint, tmp_path, monkeypatch
) -> None:
    proxy, bucket = proxied
    fill(moto_endpoint, bucket, 12)
    raw = tmp_path / "raw"
    sync(cfg(f"s3://{bucket}/idc", proxy.url), raw)
    before = on_disk(raw)
    state = (raw / STATE_NAME).read_bytes()
    fill(moto_endpoint, bucket, 12, tag="v2")  # every object changed: all must be downloaded again

    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "3")  # the same code path as the default, with shorter waits
    proxy.policy = FaultPolicy(throttle_all=True, target="object_get")  # listing works, downloads never do
    with pytest.raises(DataError) as err:
        sync(cfg(f"s3://{bucket}/idc", proxy.url), raw)
    message = str(err.value)
    assert "\n" not in message and "throttled" in message, message
    assert "SlowDown" in message or "ThrottlingException" in message, message
    assert proxy.policy.throttled >= 3  # every download attempt was refused
    assert on_disk(raw) == before and (raw / STATE_NAME).read_bytes() == state
    assert no_leftovers(tmp_path)


def test_server_stopped_mid_ingest_fails_cleanly_and_rerun_fetches_only_changes(
    aws_env, tmp_path, monkeypatch
) -> None:
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    moto.start()
    host, port = moto.get_host_and_port()
    upstream = f"http://{host}:{port}"
    bucket = "faults-stop-mid-ingest"
    boto3.client("s3", endpoint_url=upstream).create_bucket(Bucket=bucket)
    proxy = FaultProxy(upstream, FaultPolicy())
    try:
        v1 = fill(upstream, bucket, 40)
        raw = tmp_path / "raw"
        assert sync(cfg(f"s3://{bucket}/idc", proxy.url, workers=2), raw).copied == 40
        before = on_disk(raw)
        changed = fill(upstream, bucket, 10, tag="v2")  # img000..img009 change
        added = {"idc/new/extra.png": b"new object"}
        boto3.client("s3", endpoint_url=upstream).put_object(
            Bucket=bucket, Key="idc/new/extra.png", Body=b"new object"
        )

        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
        proxy.policy = FaultPolicy(stop_after_gets=4)
        proxy.on_down = moto.stop
        with pytest.raises(DataError) as err:
            sync(cfg(f"s3://{bucket}/idc", proxy.url, workers=2), raw)
        assert proxy.policy.down and proxy.policy.object_gets == 4
        assert "\n" not in str(err.value) and ("cannot reach" in str(err.value) or "failed" in str(err.value))
        assert on_disk(raw) == before  # previous raw intact, nothing half-written
        assert no_leftovers(tmp_path)

        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0)  # the server is back (moto keeps its state)
        moto.start()
        host, port = moto.get_host_and_port()
        policy = FaultPolicy(stop_after_gets=1000)  # never trips: only counts the downloads
        proxy = FaultProxy(f"http://{host}:{port}", policy, port=proxy.port)  # the same endpoint URL
        rerun = sync(cfg(f"s3://{bucket}/idc", proxy.url, workers=2), raw)
        assert (rerun.copied, rerun.unchanged, rerun.deleted) == (11, 30, 0)
        assert proxy.policy.object_gets == 11  # only what changed or is new went over the wire
        expected = {k.removeprefix("idc/"): v for k, v in (v1 | changed | added).items()}
        assert on_disk(raw) == expected
        assert no_leftovers(tmp_path)
    finally:
        proxy.stop()
        moto.stop()
