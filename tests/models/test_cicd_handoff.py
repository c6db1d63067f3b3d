"""The CI/CD hand-off against a loopback HTTP server playing Jenkins and GitLab (a recording server, named as a
fake: no CI server runs here), through a real Airflow HTTP connection and the http provider's HttpHook."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest


class FakeCIServer:
    """Records each POST; answers like Jenkins (201 + Location) or GitLab (JSON with id and web_url)."""

    def __init__(self):
        self.requests: list[dict] = []
        self.status = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                kind = "json" if self.headers.get("Content-Type", "").startswith("application/json") else "form"
                server.requests.append({"path": self.path, "headers": dict(self.headers),
                                        "body": json.loads(body) if kind == "json" else
                                        {k: v[0] for k, v in parse_qs(body).items()}})
                if server.status:
                    self.send_response(server.status)
                    self.end_headers()
                    self.wfile.write(b"pipeline service unavailable")
                elif "/job/" in self.path:
                    self.send_response(201)
                    self.send_header("Location", f"http://{self.headers['Host']}/queue/item/7/")
                    self.end_headers()
                else:
                    payload = json.dumps({"id": 42, "web_url": "https://gitlab.example/p/-/pipelines/42"}).encode()
                    self.send_response(201)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture()
def ci(monkeypatch):
    server = FakeCIServer()
    monkeypatch.setenv("AIRFLOW_CONN_JENKINS_TEST", json.dumps(
        {"conn_type": "http", "host": "127.0.0.1", "port": server.port, "schema": "http", "login": "bot",
         "password": "api-token"}))
    monkeypatch.setenv("AIRFLOW_CONN_GITLAB_TEST", json.dumps(
        {"conn_type": "http", "host": "127.0.0.1", "port": server.port, "schema": "http",
         "password": "trigger-token"}))
    yield server
    server.httpd.shutdown()


def _run(op):
    return op.execute({"run_id": "manual__1"})


def test_jenkins_build_with_parameters(ci):
    from airflow_agentic.operators.cicd import PipelineTriggerOperator

    op = PipelineTriggerOperator(task_id="handoff", http_conn_id="jenkins_test", kind="jenkins",
                                 pipeline="ml/deploy-model", model_name="flywheel", model_version="3",
                                 parameters={"ENV": "prod"})
    result = _run(op)
    request = ci.requests[-1]
    assert request["path"] == "/job/ml/job/deploy-model/buildWithParameters"
    assert request["headers"]["Authorization"] == "Basic " + base64.b64encode(b"bot:api-token").decode()
    body = {k: v for k, v in request["body"].items() if k != "AIRFLOW_DAG_ID"}
    assert body == {"ENV": "prod", "MODEL_NAME": "flywheel", "MODEL_VERSION": "3", "MODEL_URI": "models:/flywheel/3",
                    "AIRFLOW_RUN_ID": "manual__1"}
    assert result["queue_url"].endswith("/queue/item/7/") and result["status_code"] == 201


def test_gitlab_pipeline_trigger(ci):
    from airflow_agentic.operators.cicd import PipelineTriggerOperator

    result = _run(PipelineTriggerOperator(task_id="handoff", http_conn_id="gitlab_test", kind="gitlab",
                                          pipeline="123", ref="release", model_name="flywheel", model_version="5"))
    request = ci.requests[-1]
    assert request["path"] == "/api/v4/projects/123/trigger/pipeline"
    assert request["body"]["token"] == "trigger-token" and request["body"]["ref"] == "release"
    assert request["body"]["variables[MODEL_URI]"] == "models:/flywheel/5"
    assert result["pipeline_id"] == 42 and result["web_url"].endswith("/42")


def test_an_error_answer_fails_with_status_and_body(ci):
    from airflow_agentic.operators.cicd import PipelineTriggerOperator

    ci.status = 503
    op = PipelineTriggerOperator(task_id="handoff", http_conn_id="jenkins_test", kind="jenkins", pipeline="deploy",
                                 model_name="flywheel", model_version="1")
    with pytest.raises(RuntimeError, match="answered 503.*pipeline service unavailable"):
        _run(op)


def test_version_from_the_alias_and_a_clear_error_without_it(ci, mlflow_uri, monkeypatch):
    from mlflow import MlflowClient

    from airflow_agentic.operators.cicd import PipelineTriggerOperator

    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_HANDOFF", json.dumps({"conn_type": "mlflow", "host": mlflow_uri}))
    client = MlflowClient(mlflow_uri)
    client.create_registered_model("handoff_model")
    version = client.create_model_version("handoff_model", source="s3://models/handoff/1").version
    client.set_registered_model_alias("handoff_model", "champion", version)
    op = PipelineTriggerOperator(task_id="handoff", http_conn_id="jenkins_test", kind="jenkins", pipeline="deploy",
                                 model_name="handoff_model", mlflow_conn_id="mlflow_handoff")
    assert _run(op)["model_uri"] == f"models:/handoff_model/{version}"
    missing = PipelineTriggerOperator(task_id="handoff", http_conn_id="jenkins_test", kind="jenkins",
                                      pipeline="deploy", model_name="handoff_model", alias="challenger",
                                      mlflow_conn_id="mlflow_handoff")
    with pytest.raises(ValueError, match="alias 'challenger'"):
        _run(missing)
