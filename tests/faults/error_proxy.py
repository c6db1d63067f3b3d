"""A loopback HTTP proxy in front of the moto S3 server that answers S3 errors (500 InternalError, 503 SlowDown) to
PUT requests once the first N have gone through, as an object store failing mid-write does. (tests/models/proxy.py
drops connections to one chosen request; this one answers errors, from a given point on.)"""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_CODES = {500: "InternalError", 503: "SlowDown"}


class ErrorProxy:
    def __init__(self, upstream: str):
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname, parts.port)
        self.lock = threading.Lock()
        self.passed_puts = 0
        self.allow_puts: int | None = None  # None: no fault
        self.status = 500
        self.failed: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _handle(self):
                body = self._body()
                status = proxy._fault(self.command)
                if status is not None:
                    proxy.failed.append(f"{self.command} {self.path}")
                    payload = (f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{_CODES[status]}</Code>"
                               f"<Message>injected by the fault suite</Message></Error>").encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=60)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("connection", "transfer-encoding", "content-length")}
                headers["Content-Length"] = str(len(body))
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                conn.close()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                # A HEAD answer has no body but the object's length (clients read the size from it).
                length = response.getheader("Content-Length") if self.command == "HEAD" else len(payload)
                self.send_header("Content-Length", str(length or 0))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _fault(self, method: str) -> int | None:
        if method != "PUT":
            return None
        with self.lock:
            if self.allow_puts is None or self.passed_puts < self.allow_puts:
                self.passed_puts += 1
                return None
            return self.status

    def fail_puts_after(self, n: int, status: int = 500) -> None:
        """Let ``n`` more PUTs through, then answer ``status`` to every PUT until :meth:`clear`."""
        with self.lock:
            self.allow_puts, self.passed_puts, self.status, self.failed = n, 0, status, []

    def clear(self) -> None:
        with self.lock:
            self.allow_puts = None

    def __enter__(self) -> ErrorProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
