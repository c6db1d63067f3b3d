"""FAKE Kubernetes API server for tests: a loopback http.server that keeps Deployments and Services in memory,
records every request, answers the minimal JSON the kubernetes client needs, reports every Deployment as ready, and
answers the service proxy's /invocations with one prediction per row. It is not a Kubernetes implementation."""

from __future__ import annotations

import copy
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COLLECTION = re.compile(r"^/(?:apis/apps/v1|api/v1)/namespaces/([^/]+)/(deployments|services)(?:/([^/]+))?$")
PROXY = re.compile(r"^/api/v1/namespaces/([^/]+)/services/([^/]+)/proxy/(.+)$")


def merge(base: dict, patch: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class FakeKubeAPIServer:
    def __init__(self):
        self.objects: dict[tuple[str, str, str], dict] = {}  # (kind, namespace, name) -> object
        self.requests: list[tuple[str, str, dict | None]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _reply(self, code: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _not_found(self, name: str) -> None:
                self._reply(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404,
                                  "reason": "NotFound", "message": f"{name} not found"})

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                path = self.path.split("?")[0]
                fake.requests.append((self.command, path, body))
                proxied = PROXY.match(path)
                if proxied:
                    rows = len(body["dataframe_split"]["data"])
                    return self._reply(200, {"predictions": [i % 2 for i in range(rows)]})
                match = COLLECTION.match(path)
                if not match:
                    return self._not_found(path)
                namespace, kind, name = match.groups()
                key = (kind, namespace, name)
                if self.command == "POST":
                    obj = copy.deepcopy(body)
                    obj["metadata"].setdefault("namespace", namespace)
                    fake.objects[(kind, namespace, obj["metadata"]["name"])] = obj
                    return self._reply(201, fake.view(kind, obj))
                if key not in fake.objects:
                    return self._not_found(name)
                if self.command == "GET":
                    return self._reply(200, fake.view(kind, fake.objects[key]))
                if self.command == "PATCH":
                    fake.objects[key] = merge(fake.objects[key], body)
                    return self._reply(200, fake.view(kind, fake.objects[key]))
                if self.command == "DELETE":
                    del fake.objects[key]
                    return self._reply(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})
                return self._not_found(path)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @staticmethod
    def view(kind: str, obj: dict) -> dict:
        obj = copy.deepcopy(obj)
        if kind == "deployments":  # every pod is instantly ready in the fake
            replicas = obj["spec"].get("replicas", 1)
            obj["status"] = {"replicas": replicas, "readyReplicas": replicas}
        return obj

    def deployment(self, name: str, namespace: str = "default") -> dict | None:
        return self.objects.get(("deployments", namespace, name))

    def kubeconfig(self) -> dict:
        return {"apiVersion": "v1", "kind": "Config", "current-context": "fake",
                "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
                "users": [{"name": "fake", "user": {"token": "fake-token"}}]}

    def __enter__(self) -> FakeKubeAPIServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
