"""Serving targets behind one interface: batch (in-process pyfunc), a local `mlflow models serve` process, and
Kubernetes (Deployment + Service, canary by replica share) through the cncf-kubernetes provider's client."""

from __future__ import annotations

import json
import logging
import math
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


class ServingError(RuntimeError):
    pass


def resolve_model_uri(model_uri: str, tracking_uri: str | None = None) -> tuple[str, str | None]:
    """`models:/name@alias` -> (`models:/name/<version>`, version): deployments pin a version so rollback is exact."""
    if not model_uri.startswith("models:/") or "@" not in model_uri:
        version = model_uri.rsplit("/", 1)[-1] if model_uri.startswith("models:/") else None
        return model_uri, version
    from mlflow import MlflowClient

    name, alias = model_uri[len("models:/"):].split("@", 1)
    version = MlflowClient(tracking_uri=tracking_uri).get_model_version_by_alias(name, alias).version
    return f"models:/{name}/{version}", str(version)


def _frame_payload(df: pd.DataFrame) -> bytes:
    return json.dumps({"dataframe_split": json.loads(df.to_json(orient="split", index=False))}).encode()


class ServingTarget:
    """deploy(model_uri) -> description; health() -> dict with "ok"; predict(df); rollback(); describe()."""

    kind = "base"

    def deploy(self, model_uri: str) -> dict[str, Any]:
        raise NotImplementedError

    def health(self) -> dict[str, Any]:
        raise NotImplementedError

    def predict(self, df: pd.DataFrame) -> Any:
        raise NotImplementedError

    def rollback(self) -> dict[str, Any]:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind}


# -- batch ----------------------------------------------------------------------------------------------------------
class BatchServing(ServingTarget):
    """In-process scoring of `models:/<name>@<alias>`; the alias is resolved on every call and models are cached by
    version, so a promotion takes effect on the next batch without reloading an unchanged model."""

    kind = "batch"

    def __init__(self, model_name: str, alias: str = "champion", tracking_uri: str | None = None,
                 cache_size: int = 2):
        self.model_name = model_name
        self.alias = alias
        self.tracking_uri = tracking_uri
        self.cache_size = cache_size
        self._cache: dict[str, Any] = {}
        self._pinned: list[str] = []  # deploy() pins explicit URIs; rollback() unpins
        self.last_version: str | None = None

    def current_uri(self) -> tuple[str, str | None]:
        if self._pinned:
            return resolve_model_uri(self._pinned[-1], self.tracking_uri)
        return resolve_model_uri(f"models:/{self.model_name}@{self.alias}", self.tracking_uri)

    def _load(self, uri: str) -> Any:
        import mlflow.pyfunc

        if uri not in self._cache:
            self._cache[uri] = mlflow.pyfunc.load_model(uri)
            while len(self._cache) > self.cache_size:
                self._cache.pop(next(iter(self._cache)))
        return self._cache[uri]

    def deploy(self, model_uri: str | None = None) -> dict[str, Any]:
        if model_uri:
            self._pinned.append(model_uri)
        uri, version = self.current_uri()
        self._load(uri)
        self.last_version = version
        return self.describe()

    def predict(self, df: pd.DataFrame) -> Any:
        uri, version = self.current_uri()
        self.last_version = version
        return self._load(uri).predict(df)

    def health(self) -> dict[str, Any]:
        try:
            uri, version = self.current_uri()
            self._load(uri)
            return {"ok": True, "model_uri": uri, "version": version}
        except Exception as exc:  # noqa: BLE001
            return {"ok": False, "error": f"{exc.__class__.__name__}: {exc}"}

    def rollback(self) -> dict[str, Any]:
        if self._pinned:
            self._pinned.pop()
        return self.describe()

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "model_name": self.model_name, "alias": self.alias,
                "pinned": list(self._pinned), "cached": list(self._cache), "last_version": self.last_version}


# -- local server ---------------------------------------------------------------------------------------------------
def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class LocalServer(ServingTarget):
    """`mlflow models serve` on loopback. deploy() starts the new model on a fresh port, waits for /ping, then stops
    the old process (blue/green on one machine); rollback() redeploys the previously served version."""

    kind = "local"

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, env_manager: str = "local",
                 startup_timeout: float = 180.0, tracking_uri: str | None = None, log_dir: str | None = None,
                 mlflow_bin: str | None = None):
        self.host = host
        self.fixed_port = port
        self.env_manager = env_manager
        self.startup_timeout = startup_timeout
        self.tracking_uri = tracking_uri
        self.log_dir = Path(log_dir) if log_dir else None
        self.mlflow_bin = mlflow_bin or str(Path(sys.executable).parent / "mlflow")
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.model_uri: str | None = None
        self.history: list[str] = []

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _start(self, model_uri: str, port: int) -> subprocess.Popen:
        cmd = [self.mlflow_bin, "models", "serve", "-m", model_uri, "--host", self.host, "-p", str(port),
               "--env-manager", self.env_manager, "--workers", "1"]
        env = dict(os.environ)
        # mlflow execs `uvicorn` by name: the environment's bin directory must be on PATH (it is not when Python
        # was started by path, as Airflow workers often are).
        env["PATH"] = os.pathsep.join([str(Path(self.mlflow_bin).parent), env.get("PATH", "")])
        if self.tracking_uri:
            env["MLFLOW_TRACKING_URI"] = self.tracking_uri
        out = subprocess.DEVNULL
        if self.log_dir:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            out = open(self.log_dir / f"serve-{port}.log", "ab")  # noqa: SIM115 - lives as long as the process
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def _wait_ready(self, proc: subprocess.Popen, port: int) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise ServingError(f"mlflow models serve exited with {proc.returncode} before answering /ping")
            try:
                with urllib.request.urlopen(f"http://{self.host}:{port}/ping", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        self._stop(proc)
        raise ServingError(f"model server on port {port} not healthy after {self.startup_timeout}s")

    @staticmethod
    def _stop(proc: subprocess.Popen | None) -> None:
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)

    def deploy(self, model_uri: str) -> dict[str, Any]:
        pinned, _ = resolve_model_uri(model_uri, self.tracking_uri)
        port = self.fixed_port if self.fixed_port and self.proc is None else _free_port(self.host)
        proc = self._start(pinned, port)
        self._wait_ready(proc, port)  # the old server keeps serving until the new one answers
        old = self.proc
        self.proc, self.port = proc, port
        if self.model_uri:
            self.history.append(self.model_uri)
        self.model_uri = pinned
        self._stop(old)
        return self.describe()

    def health(self) -> dict[str, Any]:
        if self.proc is None or self.proc.poll() is not None:
            return {"ok": False, "error": "not running"}
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=5) as response:
                return {"ok": response.status == 200, "url": self.url, "model_uri": self.model_uri}
        except (urllib.error.URLError, OSError) as exc:
            return {"ok": False, "error": str(exc)}

    def predict(self, df: pd.DataFrame) -> Any:
        request = urllib.request.Request(f"{self.url}/invocations", data=_frame_payload(df),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())["predictions"]

    def rollback(self) -> dict[str, Any]:
        if not self.history:
            raise ServingError("nothing to roll back to: only one model was deployed")
        previous = self.history.pop()
        current = self.model_uri
        self.deploy(previous)
        self.history.pop()  # deploy() pushed the rolled-back model; it must not become a rollback target
        log.info("local server rolled back from %s to %s", current, previous)
        return self.describe()

    def stop(self) -> None:
        self._stop(self.proc)
        self.proc = None

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "url": self.url if self.port else None, "model_uri": self.model_uri,
                "pid": self.proc.pid if self.proc else None, "history": list(self.history)}


# -- Kubernetes -----------------------------------------------------------------------------------------------------
DEFAULT_BUILD_COMMAND = "mlflow models build-docker -m {model_uri} -n {image}"
MODEL_URI_ANNOTATION = "airflow-agentic/model-uri"
PREVIOUS_IMAGE_ANNOTATION = "airflow-agentic/previous-image"
PREVIOUS_URI_ANNOTATION = "airflow-agentic/previous-model-uri"


def _kubernetes_client() -> Any:
    from airflow_agentic.extras import require

    return require("kubernetes.client", "cncf-kubernetes", "Kubernetes serving")


class KubernetesServing(ServingTarget):
    """A Deployment `<name>` (track=stable) and optionally `<name>-canary` (track=canary) behind one Service
    `<name>` that selects both, so traffic splits by replica share.

    Give `hook` (a cncf-kubernetes `KubernetesHook`; its `get_conn()` is the API client) or `api_client`.
    `image_template` names the image per model version; `build_command` builds it (default
    `mlflow models build-docker`, run with `build=True`), skipped when the image already exists in a registry.
    """

    kind = "kubernetes"

    def __init__(self, name: str, namespace: str = "default", *, hook: Any = None, api_client: Any = None,
                 image_template: str = "{name}:{version}", replicas: int = 2, container_port: int = 8080,
                 service_port: int = 80, build: bool = False, build_command: str = DEFAULT_BUILD_COMMAND,
                 tracking_uri: str | None = None, ready_timeout: float = 300.0, resources: dict | None = None):
        if hook is None and api_client is None:
            raise ValueError("give a KubernetesHook (hook=) or a kubernetes ApiClient (api_client=)")
        self.name = name
        self.namespace = namespace
        self.hook = hook
        self._api_client = api_client
        self.image_template = image_template
        self.replicas = replicas
        self.container_port = container_port
        self.service_port = service_port
        self.build = build
        self.build_command = build_command
        self.tracking_uri = tracking_uri
        self.ready_timeout = ready_timeout
        self.resources = resources

    # clients
    @property
    def api_client(self) -> Any:
        if self._api_client is None:
            self._api_client = self.hook.get_conn()
        return self._api_client

    @property
    def apps(self) -> Any:
        return _kubernetes_client().AppsV1Api(self.api_client)

    @property
    def core(self) -> Any:
        return _kubernetes_client().CoreV1Api(self.api_client)

    # manifests
    def image_for(self, model_uri: str, version: str | None) -> str:
        return self.image_template.format(name=self.name, version=version or "latest")

    def build_image(self, model_uri: str, image: str) -> None:
        cmd = shlex.split(self.build_command.format(model_uri=model_uri, image=image))
        env = dict(os.environ, **({"MLFLOW_TRACKING_URI": self.tracking_uri} if self.tracking_uri else {}))
        subprocess.run(cmd, check=True, env=env)

    def _deployment(self, name: str, track: str, image: str, replicas: int, model_uri: str,
                    annotations: dict[str, str] | None = None) -> dict[str, Any]:
        labels = {"app": self.name, "track": track}
        container: dict[str, Any] = {
            "name": "model", "image": image, "ports": [{"containerPort": self.container_port}],
            "env": [{"name": "GUNICORN_CMD_ARGS", "value": f"--bind 0.0.0.0:{self.container_port}"}],
            "readinessProbe": {"httpGet": {"path": "/ping", "port": self.container_port},
                               "periodSeconds": 5},
        }
        if self.resources:
            container["resources"] = self.resources
        return {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": self.namespace, "labels": labels,
                         "annotations": {MODEL_URI_ANNOTATION: model_uri, **(annotations or {})}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}},
        }

    def _service(self) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": self.name, "namespace": self.namespace, "labels": {"app": self.name}},
                "spec": {"selector": {"app": self.name},
                         "ports": [{"port": self.service_port, "targetPort": self.container_port}]}}

    def _read_deployment(self, name: str) -> Any | None:
        from kubernetes.client.exceptions import ApiException

        try:
            return self.apps.read_namespaced_deployment(name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def _apply_deployment(self, body: dict[str, Any]) -> None:
        name = body["metadata"]["name"]
        if self._read_deployment(name) is None:
            self.apps.create_namespaced_deployment(self.namespace, body)
        else:
            self.apps.patch_namespaced_deployment(name, self.namespace, body)

    def _ensure_service(self) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            self.core.read_namespaced_service(self.name, self.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            self.core.create_namespaced_service(self.namespace, self._service())

    def _prepare_image(self, model_uri: str) -> tuple[str, str]:
        pinned, version = resolve_model_uri(model_uri, self.tracking_uri)
        image = self.image_for(pinned, version)
        if self.build:
            self.build_image(pinned, image)
        return pinned, image

    # interface
    def deploy(self, model_uri: str) -> dict[str, Any]:
        """Replace the stable track (rolling update); the old image is remembered for rollback."""
        pinned, image = self._prepare_image(model_uri)
        current = self._read_deployment(self.name)
        annotations = {}
        if current is not None:
            old = current.metadata.annotations or {}
            annotations = {PREVIOUS_IMAGE_ANNOTATION: current.spec.template.spec.containers[0].image,
                           PREVIOUS_URI_ANNOTATION: old.get(MODEL_URI_ANNOTATION, "")}
        self._apply_deployment(self._deployment(self.name, "stable", image, self.replicas, pinned, annotations))
        self._ensure_service()
        self._delete_canary()
        return self.describe()

    def deploy_canary(self, model_uri: str, share: float = 0.25) -> dict[str, Any]:
        """Run the new model on ceil(share * replicas) pods next to the stable ones; the Service splits traffic."""
        if self._read_deployment(self.name) is None:
            raise ServingError("deploy a stable model before a canary")
        pinned, image = self._prepare_image(model_uri)
        canary = max(1, math.ceil(self.replicas * share))
        stable = max(1, self.replicas - canary)
        self._apply_deployment(self._deployment(f"{self.name}-canary", "canary", image, canary, pinned))
        self.apps.patch_namespaced_deployment(self.name, self.namespace, {"spec": {"replicas": stable}})
        return self.describe()

    def promote_canary(self) -> dict[str, Any]:
        canary = self._read_deployment(f"{self.name}-canary")
        if canary is None:
            raise ServingError("no canary to promote")
        uri = (canary.metadata.annotations or {}).get(MODEL_URI_ANNOTATION, "")
        image = canary.spec.template.spec.containers[0].image
        current = self._read_deployment(self.name)
        annotations = {PREVIOUS_IMAGE_ANNOTATION: current.spec.template.spec.containers[0].image,
                       PREVIOUS_URI_ANNOTATION: (current.metadata.annotations or {}).get(MODEL_URI_ANNOTATION, "")}
        self._apply_deployment(self._deployment(self.name, "stable", image, self.replicas, uri, annotations))
        self._delete_canary()
        return self.describe()

    def _delete_canary(self) -> bool:
        from kubernetes.client.exceptions import ApiException

        try:
            self.apps.delete_namespaced_deployment(f"{self.name}-canary", self.namespace)
            return True
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise

    def rollback(self) -> dict[str, Any]:
        """Drop a running canary (stable gets its replicas back); without a canary, put the previous image back."""
        if self._delete_canary():
            self.apps.patch_namespaced_deployment(self.name, self.namespace, {"spec": {"replicas": self.replicas}})
            return self.describe()
        current = self._read_deployment(self.name)
        annotations = (current.metadata.annotations or {}) if current else {}
        previous_image = annotations.get(PREVIOUS_IMAGE_ANNOTATION)
        if not previous_image:
            raise ServingError(f"{self.name} has no previous image to roll back to")
        body = self._deployment(self.name, "stable", previous_image, self.replicas,
                                annotations.get(PREVIOUS_URI_ANNOTATION, ""),
                                {PREVIOUS_IMAGE_ANNOTATION: "", PREVIOUS_URI_ANNOTATION: ""})
        self.apps.patch_namespaced_deployment(self.name, self.namespace, body)
        return self.describe()

    def health(self) -> dict[str, Any]:
        tracks = {}
        ok = True
        for name in (self.name, f"{self.name}-canary"):
            deployment = self._read_deployment(name)
            if deployment is None:
                continue
            wanted = deployment.spec.replicas or 0
            ready = (deployment.status.ready_replicas or 0) if deployment.status else 0
            tracks[name] = {"replicas": wanted, "ready": ready}
            ok = ok and ready >= wanted
        return {"ok": ok and self.name in tracks, "deployments": tracks}

    def wait_ready(self) -> dict[str, Any]:
        deadline = time.monotonic() + self.ready_timeout
        while True:
            status = self.health()
            if status["ok"] or time.monotonic() > deadline:
                return status
            time.sleep(2)

    def predict(self, df: pd.DataFrame) -> Any:
        """Score through the API server's service proxy (works from outside the cluster with the hook's creds)."""
        # The generated connect_post_*_proxy methods take no body, so call the proxy path directly.
        path = f"/api/v1/namespaces/{self.namespace}/services/{self.name}:{self.service_port}/proxy/invocations"
        response = self.api_client.call_api(
            path, "POST", header_params={"Content-Type": "application/json", "Accept": "application/json"},
            body=json.loads(_frame_payload(df)), auth_settings=["BearerToken"], _preload_content=False,
            _return_http_data_only=True)
        return json.loads(response.data)["predictions"]

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "name": self.name, "namespace": self.namespace}
        for track, name in (("stable", self.name), ("canary", f"{self.name}-canary")):
            deployment = self._read_deployment(name)
            if deployment is not None:
                out[track] = {"image": deployment.spec.template.spec.containers[0].image,
                              "replicas": deployment.spec.replicas,
                              "model_uri": (deployment.metadata.annotations or {}).get(MODEL_URI_ANNOTATION)}
        return out
