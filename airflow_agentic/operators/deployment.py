"""``DeploymentOperator``: the Deployment agent in a task. It gates the ``challenger`` against the ``champion`` on
recent labelled data neither model trained on, promotes it through registry aliases when it wins by the margin, and
serves the new champion (batch in-process, a local ``mlflow models serve`` process, or Kubernetes).

``production=True`` makes ``promote`` a destructive tool, so a person approves it under Browse -> Required Actions
(the task waits in ``awaiting_input`` without holding a worker). Default: automatic.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_agentic.links.mlflow import MODEL_VERSION_URL_XCOM_KEY, MLflowModelVersionLink, MLflowRunLink
from airflow_agentic.operators._mlops import MlflowTrackingMixin
from airflow_agentic.operators.agent import AgentOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_agentic.agents import Agent, AgentRun
    from airflow_agentic.models.serving import ServingTarget

SERVING_KINDS = ("batch", "local", "kubernetes", "none")


def build_serving(kind: str, model_name: str, config: dict[str, Any] | None, tracking_uri: str | None,
                  ) -> ServingTarget | None:
    from airflow_agentic.models import serving

    config = dict(config or {})
    if kind in ("none", None, ""):
        return None
    if kind == "batch":
        return serving.BatchServing(model_name, tracking_uri=tracking_uri, **config)
    if kind == "local":
        return serving.LocalServer(tracking_uri=tracking_uri, **config)
    if kind == "kubernetes":
        conn_id = config.pop("kubernetes_conn_id", None)
        if conn_id and "hook" not in config:
            from airflow_agentic.extras import require

            require("airflow.providers.cncf.kubernetes.hooks.kubernetes", "cncf-kubernetes", "Kubernetes serving")
            from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

            config["hook"] = KubernetesHook(conn_id=conn_id)
        return serving.KubernetesServing(config.pop("name", model_name.lower().replace("_", "-")),
                                         tracking_uri=tracking_uri, **config)
    raise ValueError(f"unknown serving {kind!r}: use one of {SERVING_KINDS}")


class DeploymentOperator(MlflowTrackingMixin, AgentOperator):
    """Gate, then promote and serve, or reject.

    :param model_name: registered model (templated).
    :param holdout: URL of recent labelled Parquet data neither model trained on (file, folder or glob; templated).
    :param target: label column (templated).
    :param margin: the challenger must beat the champion by at least this much of ``metric``.
    :param metric: gate metric (``accuracy``, ``roc_auc``, ``average_precision``, ``f1``).
    :param gate_policy: further ``GatePolicy`` fields (latency limits, class-share check, ``min_rows``).
    :param serving: ``batch`` (default), ``local``, ``kubernetes`` or ``none``; ``serving_config`` goes to its
        constructor (``LocalServer(port=...)``, ``KubernetesServing(namespace=..., kubernetes_conn_id=...)``).
    :param production: promotion needs a person's approval.
    :param conn_id: Airflow connection for the object store holding the holdout (e.g. ``aws_default`` for ``s3://``);
        None: the one named in the URL, or the store's default.
    :param mlflow_conn_id: an ``mlflow`` connection; without one ``MLFLOW_TRACKING_URI`` or a local SQLite store.

    Returns ``{"promoted", "verdict", "promotion", "serving", "rejected"}``. Bad input (no challenger, no signature,
    registry down, a model that does not load) fails the task with the reason; the champion is untouched.
    """

    template_fields: Sequence[str] = (*AgentOperator.template_fields, "model_name", "holdout", "target", "margin",
                                      "serving", "serving_config")
    template_fields_renderers = {**AgentOperator.template_fields_renderers, "serving_config": "json"}
    operator_extra_links = (*AgentOperator.operator_extra_links, MLflowRunLink(), MLflowModelVersionLink())
    ui_color = "#f3e8fd"

    def __init__(self, *, model_name: str, holdout: str, target: str = "label", margin: float | str = 0.0,
                 metric: str = "accuracy", gate_policy: dict[str, Any] | None = None, serving: str = "batch",
                 serving_config: dict[str, Any] | None = None, production: bool = False,
                 conn_id: str | None = None, mlflow_conn_id: str | None = "mlflow_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model_name = model_name
        self.holdout = holdout
        self.target = target
        self.margin = margin
        self.metric = metric
        self.gate_policy = gate_policy
        self.serving = serving
        self.serving_config = serving_config
        self.production = production
        self.conn_id = conn_id
        self.mlflow_conn_id = mlflow_conn_id

    def _hook(self):
        from airflow_agentic.operators._mlops import mlflow_hook

        return mlflow_hook(self)

    def build_agent(self, context: Context) -> Agent:
        from airflow_agentic.agents.deployment import DeploymentAgent
        from airflow_agentic.models.gate import GatePolicy
        from airflow_agentic.models.registry import ModelRegistry
        from airflow_agentic.operators._mlops import load_labelled, native

        if self.serving not in SERVING_KINDS:
            raise ValueError(f"unknown serving {self.serving!r}: use one of {SERVING_KINDS}")
        hook = self._hook()
        client = hook.client()
        uri = hook.tracking_uri()
        policy = GatePolicy.from_dict({**(self.gate_policy or {}), "metric": self.metric,
                                       "margin": float(self.margin)})
        config = native(self.serving_config)
        factory = None
        if self.serving != "none":
            def factory() -> ServingTarget | None:
                return build_serving(self.serving, self.model_name, config, uri)
        return DeploymentAgent(self.model_name, load_labelled(self.holdout, self.target, conn_id=self.conn_id),
                               registry=ModelRegistry(uri, client=client), policy=policy,
                               production=bool(self.production), serving_factory=factory, tracking_uri=uri)

    def on_finish(self, context: Context, run: AgentRun) -> Any:
        from airflow_agentic.hooks.mlflow import model_version_url, run_url
        from airflow_agentic.links.mlflow import RUN_URL_XCOM_KEY
        from airflow_agentic.operators._mlops import push_url, step_result

        result = dict(run.result or {})
        # Side-effect steps replayed from the journal (a retry) did not run again: take their recorded results.
        for key, tool_name in (("verdict", "evaluate_gate"), ("promotion", "promote"), ("serving", "serve"),
                               ("rejected", "reject_challenger")):
            if result.get(key) is None:
                result[key] = step_result(run, tool_name)
        result["promoted"] = result.get("promotion") is not None
        numbers = (result.get("verdict") or {}).get("numbers") or {}
        version = (result.get("promotion") or {}).get("to_version") or numbers.get("challenger_version")
        hook = self._hook()
        ui = hook.ui_url()
        if version:
            push_url(context, MODEL_VERSION_URL_XCOM_KEY, model_version_url(ui, self.model_name, str(version)))
            try:
                mv = hook.client().get_model_version(self.model_name, str(version))
                push_url(context, RUN_URL_XCOM_KEY, run_url(ui, hook.client().get_run(mv.run_id).info.experiment_id,
                                                            mv.run_id) if mv.run_id else None)
            except Exception as exc:  # noqa: BLE001 - a link is a convenience
                self.log.debug("no run link: %s", exc)
        self.log.info("%s: %s (%s)", self.model_name, "promoted" if result["promoted"] else "not promoted",
                      "; ".join((result.get("verdict") or {}).get("reasons") or []))
        return result
