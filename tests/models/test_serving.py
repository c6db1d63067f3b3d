"""Serving targets: Kubernetes against a FAKE API server on loopback, and one real `mlflow models serve`."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from model_data import make_frame
from fake_kube import FakeKubeAPIServer

from airflow_agentic.models.dataset import Dataset
from airflow_agentic.models.serving import KubernetesServing, LocalServer, ServingError


def kube_serving(fake: FakeKubeAPIServer, tmp_path, **kwargs) -> tuple[KubernetesServing, str]:
    """Through the cncf-kubernetes KubernetesHook when Airflow imports here, else the kubernetes client built the
    same way from the kubeconfig (the hook's own approach)."""
    kubeconfig = tmp_path / "kubeconfig.json"
    kubeconfig.write_text(json.dumps(fake.kubeconfig()))
    try:
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

        hook = KubernetesHook(conn_id=None, config_file=str(kubeconfig), in_cluster=False)
        hook.get_conn()
        return KubernetesServing("churn", hook=hook, **kwargs), "hook"
    except Exception:  # noqa: BLE001 - Airflow not importable in this environment
        from kubernetes import config

        return KubernetesServing("churn", api_client=config.new_client_from_config(str(kubeconfig)),
                                 **kwargs), "client"


def test_kubernetes_deploy_canary_promote_and_rollback_against_fake_api(tmp_path):
    with FakeKubeAPIServer() as fake:
        serving, via = kube_serving(fake, tmp_path, replicas=4, image_template="registry.local/{name}:v{version}")
        serving.deploy("models:/churn/1")
        stable = fake.deployment("churn")
        assert stable["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.local/churn:v1"
        assert stable["spec"]["replicas"] == 4
        assert ("services", "default", "churn") in fake.objects
        assert serving.health()["ok"]

        serving.deploy_canary("models:/churn/2", share=0.25)
        assert fake.deployment("churn-canary")["spec"]["replicas"] == 1
        assert fake.deployment("churn")["spec"]["replicas"] == 3
        assert fake.objects[("services", "default", "churn")]["spec"]["selector"] == {"app": "churn"}
        described = serving.describe()
        assert described["canary"]["model_uri"] == "models:/churn/2"

        serving.rollback()  # canary dropped, stable back to full size
        assert fake.deployment("churn-canary") is None and fake.deployment("churn")["spec"]["replicas"] == 4

        serving.deploy_canary("models:/churn/2", share=0.5)
        serving.promote_canary()
        assert fake.deployment("churn-canary") is None
        assert serving.describe()["stable"]["image"] == "registry.local/churn:v2"
        serving.rollback()  # no canary: previous image back
        assert serving.describe()["stable"]["image"] == "registry.local/churn:v1"
        with pytest.raises(ServingError):
            serving.rollback()  # only one step of history

        predictions = serving.predict(pd.DataFrame({"a": [1, 2, 3]}))
        assert predictions == [0, 1, 0]
        methods = {(m, p.split("/")[-1]) for m, p, _ in fake.requests}
        assert ("PATCH", "churn") in methods and ("DELETE", "churn-canary") in methods
        print(f"kubernetes client via {via}")


def test_kubernetes_needs_a_client():
    with pytest.raises(ValueError):
        KubernetesServing("x")


@pytest.mark.integration
def test_local_server_serves_the_champion_and_replaces_it(mlflow_uri, tmp_path):
    from test_training_registry import register

    from airflow_agentic.models.registry import ModelRegistry

    name = "served-model"
    registry = ModelRegistry()
    v1 = register(name)
    registry.promote(name)
    server = LocalServer(tracking_uri=mlflow_uri, log_dir=str(tmp_path), startup_timeout=240)
    try:
        info = server.deploy(f"models:/{name}@champion")
        assert info["model_uri"] == f"models:/{name}/{v1}"
        assert server.health()["ok"]
        X = Dataset(*make_frame(20, seed=3)).X
        predictions = server.predict(X)
        assert len(predictions) == 20 and set(predictions) <= {0, 1}

        v2 = register(name, {"C": 0.1, "class_weight": "none"})
        registry.promote(name)
        first_proc = server.proc
        server.deploy(f"models:/{name}@champion")  # start new, check, stop old
        assert server.model_uri == f"models:/{name}/{v2}"
        assert first_proc.poll() is not None and server.health()["ok"]
        assert len(server.predict(X.head(3))) == 3
        assert server.describe()["history"] == [f"models:/{name}/{v1}"]
    finally:
        server.stop()
    assert not server.health()["ok"]
