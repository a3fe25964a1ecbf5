"""S3 fault injection over real HTTP: a tiny proxy on 127.0.0.1 in front of moto's server.

The proxy forwards every request byte for byte to moto, except those its FaultPolicy picks:
- throttled ones get S3's real throttling answers (503 `SlowDown` XML, or 429 `ThrottlingException`);
- after `stop_after_gets` object downloads it "goes down": it stops the moto server behind it,
  closes its own listening socket (new connections are refused) and drops every open connection.
Nothing of medpipe is mocked: the S3 source's own boto3 client (retry config included) talks HTTP.
"""

from __future__ import annotations

import hashlib
import http.client
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from pipeline.config import DataConfig
from pipeline.core.errors import DataError
from pipeline.sources import STATE_NAME, sync
from pipeline.sources.s3 import DEFAULT_MAX_ATTEMPTS, make_client

THROTTLES = (
    (503, "SlowDown", "Please reduce your request rate."),
    (429, "ThrottlingException", "Rate exceeded"),
)
_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "content-length"}


@dataclass
class FaultPolicy:
    """Which requests fail: the first `throttle_first`, a seeded `throttle_fraction`, or all."""

    throttle_first: int = 0
    throttle_fraction: float = 0.0
    throttle_all: bool = False
    target: str = "any"  # which requests may be throttled: any | object_get | write (PUT/POST)
    stop_after_gets: int | None = None  # go down after this many object GETs
    seed: int = 0
    requests: int = 0
    throttled: int = 0
    object_gets: int = 0
    down: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def decide(self, method: str, path: str) -> str:
        """'forward', 'throttle' or 'down' for one request (thread-safe)."""
        with self.lock:
            self.requests += 1
            if self.down:
                return "down"
            is_object_get = method == "GET" and "?" not in path and path.count("/") >= 2  # /bucket/key
            if self.stop_after_gets is not None and is_object_get:
                if self.object_gets >= self.stop_after_gets:
                    self.down = True
                    return "down"
                self.object_gets += 1
            if (self.target == "object_get" and not is_object_get) or (
                self.target == "write" and method not in ("PUT", "POST")
            ):
                return "forward"
            if self.throttle_all or self.throttle_first > 0 or self.rng.random() < self.throttle_fraction:
                self.throttle_first = max(0, self.throttle_first - 1)
                self.throttled += 1
                return "throttle"
            return "forward"


class FaultProxy:
    """HTTP proxy on 127.0.0.1 in front of an S3 endpoint, failing what its policy says."""

    def __init__(self, upstream: str, policy: FaultPolicy, port: int = 0, on_down=None) -> None:
        self.upstream = upstream.removeprefix("http://")
        self.policy = policy
        self.on_down = on_down
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while size := int(self.rfile.readline().split(b";")[0], 16):
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _handle(self) -> None:
                body = self._body()
                action = proxy.policy.decide(self.command, self.path)
                if action == "down":
                    proxy.go_down()
                    self.close_connection = True
                    return  # the connection is dropped without an answer
                if action == "throttle":
                    status, code, message = THROTTLES[proxy.policy.throttled % len(THROTTLES)]
                    xml = (
                        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                        f"<Message>{message}</Message><RequestId>fault-proxy</RequestId></Error>"
                    ).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(xml)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(xml)
                    return
                conn = http.client.HTTPConnection(proxy.upstream, timeout=30)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                finally:
                    conn.close()
                self.send_response(resp.status, resp.reason)
                for key, value in resp.getheaders():
                    if key.lower() not in _HOP or (
                        self.command == "HEAD" and key.lower() == "content-length"
                    ):
                        self.send_header(key, value)
                if self.command != "HEAD":
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self._down_once = threading.Lock()

    def go_down(self) -> None:
        """Stop the upstream (on_down) and refuse new connections, once."""
        if not self._down_once.acquire(blocking=False):
            return
        threading.Thread(target=self.stop, daemon=True).start()
        if self.on_down is not None:
            threading.Thread(target=self.on_down, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


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
