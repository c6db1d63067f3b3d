"""A loopback HTTP proxy in front of the MLflow server that can drop one chosen request, to simulate a registry
failing mid-way: either before the request reaches the server or after (the server acted, the answer is lost)."""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class DroppingProxy:
    def __init__(self, upstream: str):
        parts = urlsplit(upstream)
        self.upstream_host, self.upstream_port = parts.hostname, parts.port
        self.rule = None  # (method, path fragment, nth match, "before" | "after")
        self.matches = 0
        self.dropped: list[str] = []
        self.seen: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _handle(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                line = f"{self.command} {self.path}"
                proxy.seen.append(line)
                drop = proxy._decide(self.command, self.path)
                if drop == "before":
                    proxy.dropped.append(line)
                    self.close_connection = True
                    return
                conn = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                conn.close()
                if drop == "after":
                    proxy.dropped.append(line)
                    self.close_connection = True
                    return
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _decide(self, method: str, path: str) -> str | None:
        if self.rule is None:
            return None
        rule_method, fragment, nth, when = self.rule
        if method == rule_method and fragment in path:
            self.matches += 1
            if self.matches == nth:
                return when
        return None

    def drop(self, method: str, fragment: str, nth: int, when: str = "before") -> None:
        self.rule, self.matches = (method, fragment, nth, when), 0

    def clear(self) -> None:
        self.rule = None

    def __enter__(self) -> DroppingProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
