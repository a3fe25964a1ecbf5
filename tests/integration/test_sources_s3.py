"""S3 source against moto's real HTTP server on 127.0.0.1 (boto3 talks HTTP; nothing is mocked)."""

from __future__ import annotations

import hashlib
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import boto3
import pytest

from pipeline.config import DataConfig
from pipeline.core.errors import DataError
from pipeline.sources import STATE_NAME, sync


@pytest.fixture
def s3(moto_endpoint, aws_env, request):
    client = boto3.client("s3", endpoint_url=moto_endpoint)
    bucket = request.node.name.lower().replace("_", "-")[:50].strip("-[]")
    client.create_bucket(Bucket=bucket)
    return client, bucket


def put(client, bucket: str, key: str, data: bytes) -> None:
    client.put_object(Bucket=bucket, Key=key, Body=data)


def cfg_for(url: str, endpoint: str | None) -> DataConfig:
    return replace(DataConfig(), source=url, s3_endpoint_url=endpoint, s3_workers=4)


def test_sync_downloads_only_changes(s3, moto_endpoint, tmp_path):
    client, bucket = s3
    blobs = {f"idc/1000{i}/{i % 2}/p{i}.png": bytes([i]) * (100 + i) for i in range(6)}
    for key, data in blobs.items():
        put(client, bucket, key, data)
    put(client, bucket, "idc/.DS_Store", b"x")
    put(client, bucket, "idc/notes.txt", b"x")
    put(client, bucket, "idc2/other.png", b"not under the prefix")
    cfg, raw = cfg_for(f"s3://{bucket}/idc", moto_endpoint), tmp_path / "raw"

    first = sync(cfg, raw)
    assert first.copied == 6
    on_disk = {p.relative_to(raw).as_posix() for p in raw.rglob("*") if p.is_file()}
    assert on_disk == {k.removeprefix("idc/") for k in blobs} | {STATE_NAME}
    for key, data in blobs.items():
        rec = first.files[key.removeprefix("idc/")]
        assert (raw / key.removeprefix("idc/")).read_bytes() == data
        assert rec.sha256 == hashlib.sha256(data).hexdigest()
    state = (raw / STATE_NAME).read_bytes()

    second = sync(cfg, raw)
    assert (second.copied, second.unchanged, second.deleted) == (0, 6, 0)
    assert (raw / STATE_NAME).read_bytes() == state

    put(client, bucket, "idc/10001/1/p1.png", b"changed bytes")
    client.delete_object(Bucket=bucket, Key="idc/10002/0/p2.png")
    third = sync(cfg, raw)
    assert (third.copied, third.deleted, third.unchanged) == (1, 1, 4)
    assert (raw / "10001/1/p1.png").read_bytes() == b"changed bytes"
    assert not (raw / "10002").exists()


def test_pagination_and_endpoint_from_environment(s3, moto_endpoint, tmp_path, monkeypatch):
    client, bucket = s3
    with ThreadPoolExecutor(8) as pool:  # list_objects_v2 pages hold 1000 keys
        list(pool.map(lambda i: put(client, bucket, f"many/{i:04d}.png", b"x"), range(1005)))
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    summary = sync(cfg_for(f"s3://{bucket}/many/", None), tmp_path / "raw")
    assert summary.copied == 1005 == len(list((tmp_path / "raw").glob("*.png")))


def test_missing_bucket_and_empty_prefix_keep_previous_raw(s3, moto_endpoint, tmp_path):
    client, bucket = s3
    put(client, bucket, "ok/a.png", b"a")
    raw = tmp_path / "raw"
    sync(cfg_for(f"s3://{bucket}/ok", moto_endpoint), raw)
    with pytest.raises(DataError, match="does not exist"):
        sync(cfg_for("s3://no-such-bucket-medpipe/x", moto_endpoint), raw)
    with pytest.raises(DataError, match="holds no objects"):
        sync(cfg_for(f"s3://{bucket}/nothing-here", moto_endpoint), raw)
    put(client, bucket, "txt/readme.txt", b"a")
    with pytest.raises(DataError, match="no image files"):
        sync(cfg_for(f"s3://{bucket}/txt", moto_endpoint), raw)
    assert (raw / "a.png").read_bytes() == b"a"
    assert not list(tmp_path.glob(".raw.staging-*"))


def _set_auth(endpoint: str, free_actions: str) -> None:
    """moto's switch for IAM checks: '0' = every request is authenticated, 'inf' = none."""
    req = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth",
        data=free_actions.encode(),
        headers={"Content-Type": "text/plain"},
        method="POST",
    )
    urllib.request.urlopen(req, timeout=10).read()


def test_access_denied_with_unknown_credentials(s3, moto_endpoint, tmp_path):
    client, bucket = s3
    put(client, bucket, "x/a.png", b"a")
    _set_auth(moto_endpoint, "0")
    try:
        with pytest.raises(DataError, match="access denied") as err:
            sync(cfg_for(f"s3://{bucket}/x", moto_endpoint), tmp_path / "raw")
    finally:
        _set_auth(moto_endpoint, "inf")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "raw").exists()


def test_unreachable_endpoint(s3, tmp_path, monkeypatch):
    _, bucket = s3
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # fail fast instead of retrying with backoff
    cfg = replace(cfg_for(f"s3://{bucket}/x", "http://127.0.0.1:9"))
    with pytest.raises(DataError, match="cannot reach"):
        sync(cfg, tmp_path / "raw")


def test_bucketless_url(tmp_path):
    with pytest.raises(DataError, match="no bucket"):
        sync(cfg_for("s3:///prefix", None), Path(tmp_path / "raw"))


def test_impossible_key_tree_is_one_line_before_any_download(s3, moto_endpoint, tmp_path):
    client, bucket = s3
    put(client, bucket, "p/x.png", b"file")
    put(client, bucket, "p/x.png/y.png", b"below a file of the same name")
    with pytest.raises(DataError) as err:
        sync(cfg_for(f"s3://{bucket}/p", moto_endpoint), tmp_path / "raw")
    assert str(err.value) == (
        f"s3://{bucket}/p has both a file 'x.png' and a folder of that name (holding 'x.png/y.png'); rename one of them"
    )
    assert not (tmp_path / "raw").exists() and list(tmp_path.iterdir()) == []
