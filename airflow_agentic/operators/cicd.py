"""``PipelineTriggerOperator``: hand a promoted model to a Jenkins job or a GitLab pipeline (the CI/CD hand-off).

The request goes through an Airflow HTTP connection (type ``http``) with the http provider's ``HttpHook``:
- ``kind="jenkins"``: ``POST /job/<pipeline>/buildWithParameters`` with the parameters as form fields; the
  connection's login and password (a Jenkins API token) are the basic-auth credentials. Jenkins answers 201 with the
  queue item in ``Location``.
- ``kind="gitlab"``: ``POST /api/v4/projects/<pipeline>/trigger/pipeline`` with ``token`` (the connection's password,
  a pipeline trigger token), ``ref`` and ``variables[KEY]``. GitLab answers with the pipeline's ``id`` and ``web_url``.
- ``kind="generic"``: ``POST <endpoint>`` with the parameters as a JSON body.

The parameters always carry the model: ``MODEL_NAME``, ``MODEL_VERSION`` (given, or the version behind ``alias`` in
the MLflow registry when the task runs) and ``MODEL_URI``, plus ``AIRFLOW_DAG_ID`` and ``AIRFLOW_RUN_ID`` so the
pipeline can report back. Any non-2xx answer fails the task with the status and the start of the body.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

KINDS = ("jenkins", "gitlab", "generic")


class PipelineTriggerOperator(BaseOperator):
    """Start a CI/CD pipeline for a model version.

    :param http_conn_id: HTTP connection of the CI server (host, and login/password or a token as password).
    :param kind: ``jenkins``, ``gitlab`` or ``generic``.
    :param pipeline: the Jenkins job path (``folder/job/name`` allowed) or the GitLab project id / url-encoded path.
    :param model_name: registered model; ``model_version`` (templated) or else the version behind ``alias``.
    :param ref: GitLab branch or tag to run the pipeline on.
    :param parameters: extra parameters / variables (templated).
    :param endpoint: for ``generic``: the path to POST to; overrides the default path for the others.
    """

    template_fields: Sequence[str] = ("pipeline", "model_name", "model_version", "alias", "ref", "parameters",
                                      "endpoint")
    template_fields_renderers = {"parameters": "json"}
    ui_color = "#eceff1"

    def __init__(self, *, http_conn_id: str, kind: str, model_name: str, pipeline: str | None = None,
                 model_version: str | None = None, alias: str = "champion", ref: str = "main",
                 parameters: dict[str, Any] | None = None, endpoint: str | None = None,
                 mlflow_conn_id: str | None = "mlflow_default", timeout: float = 30.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        if kind != "generic" and not pipeline and not endpoint:
            raise ValueError(f"kind={kind!r} needs `pipeline` (the job or project) or an explicit `endpoint`")
        if kind == "generic" and not endpoint:
            raise ValueError("kind='generic' needs `endpoint`")
        self.http_conn_id = http_conn_id
        self.kind = kind
        self.pipeline = pipeline
        self.model_name = model_name
        self.model_version = model_version
        self.alias = alias
        self.ref = ref
        self.parameters = parameters
        self.endpoint = endpoint
        self.mlflow_conn_id = mlflow_conn_id
        self.timeout = timeout

    def _version(self) -> str:
        if self.model_version not in (None, ""):
            return str(self.model_version)
        from airflow_agentic.operators._mlops import mlflow_hook

        try:
            found = mlflow_hook(self).client().get_model_version_by_alias(self.model_name, self.alias)
        except Exception as exc:  # noqa: BLE001 - the message names what is missing
            raise ValueError(f"no version of {self.model_name!r} holds the alias {self.alias!r} "
                             f"(or the registry is unreachable): {exc}") from exc
        return str(found.version)

    def request(self, params: dict[str, str], password: str | None) -> tuple[str, dict[str, Any]]:
        """(endpoint, keyword arguments of ``HttpHook.run``) for this kind."""
        if self.kind == "jenkins":
            job = "/job/".join(part for part in str(self.pipeline).strip("/").split("/") if part != "job")
            return self.endpoint or f"/job/{job}/buildWithParameters", {"data": params}
        if self.kind == "gitlab":
            if not password:
                raise ValueError(f"connection {self.http_conn_id!r} has no password: put the GitLab pipeline "
                                 f"trigger token there")
            form = {"token": password, "ref": self.ref, **{f"variables[{k}]": v for k, v in params.items()}}
            return self.endpoint or f"/api/v4/projects/{self.pipeline}/trigger/pipeline", {"data": form}
        return str(self.endpoint), {"json": params, "headers": {"Content-Type": "application/json"}}

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.providers.http.hooks.http import HttpHook

        version = self._version()
        params = {str(k): str(v) for k, v in (self.parameters or {}).items()}
        params.update(MODEL_NAME=self.model_name, MODEL_VERSION=version,
                      MODEL_URI=f"models:/{self.model_name}/{version}", AIRFLOW_DAG_ID=self.dag_id,
                      AIRFLOW_RUN_ID=str(context.get("run_id") or ""))
        hook = HttpHook(method="POST", http_conn_id=self.http_conn_id)
        # GitLab authenticates by the trigger token in the form (the connection's password), Jenkins by basic auth.
        endpoint, kwargs = self.request(params, hook.get_connection(self.http_conn_id).password)
        response = hook.run(endpoint, extra_options={"check_response": False, "timeout": self.timeout}, **kwargs)
        if not 200 <= response.status_code < 300:
            raise RuntimeError(f"{self.kind} at {self.http_conn_id!r} answered {response.status_code} to POST "
                               f"{endpoint}: {response.text[:300]}")
        body: Any = None
        try:
            body = response.json()
        except ValueError:
            body = None
        result = {"kind": self.kind, "endpoint": endpoint, "status_code": response.status_code,
                  "model_uri": params["MODEL_URI"], "queue_url": response.headers.get("Location"),
                  "pipeline_id": body.get("id") if isinstance(body, dict) else None,
                  "web_url": body.get("web_url") if isinstance(body, dict) else None}
        self.log.info("Handed %s to %s: %s", params["MODEL_URI"], self.kind,
                      json.dumps({k: v for k, v in result.items() if v is not None}))
        return result
