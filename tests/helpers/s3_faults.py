"""S3 fault injection over real HTTP: a tiny proxy on 127.0.0.1 in front of moto's server.

The proxy forwards every request byte for byte to moto, except those its FaultPolicy picks:
- throttled ones get S3's real throttling answers (503 `SlowDown` XML, or 429 `ThrottlingException`);
- after `stop_after_gets` object downloads it "goes down": it stops the moto server behind it,
  closes its own listening socket (new connections are refused) and drops every open connection.
"""

from __future__ import annotations

import http.client
import random
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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
