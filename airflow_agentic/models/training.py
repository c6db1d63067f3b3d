"""Train the challenger: plan, search each planned family, refit the best config on all training data, log it to
MLflow with a signature, register a version, point the `challenger` alias at it and tag its lineage."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import airflow_agentic
from airflow_agentic.models.architect import (DEFAULT_FAMILIES, ExperimentPlan, history_from_mlflow,
                                              plan_experiments)
from airflow_agentic.models.dataset import Dataset
from airflow_agentic.models.families import get_family
from airflow_agentic.models.hpo import HPOConfig, HPOResult, run_trials
from airflow_agentic.models.registry import CHALLENGER, CHAMPION

log = logging.getLogger(__name__)

TAG_PREFIX = "agentic."


@dataclass
class TrainingResult:
    model_name: str
    version: str
    model_uri: str
    run_id: str
    experiment_id: str
    family: str
    params: dict[str, Any]
    cv_score: float
    metric: str
    data_location: str | None
    data_hash: str
    alias: str = CHALLENGER
    lineage: dict[str, str] = field(default_factory=dict)
    plan: dict[str, Any] = field(default_factory=dict)
    searches: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingResult:
        return cls(**data)


def champion_params(model_name: str, client: Any) -> dict[str, dict[str, Any]]:
    """{family: params} of the current champion, read from its version tags (empty when there is none)."""
    from mlflow.exceptions import MlflowException

    try:
        version = client.get_model_version_by_alias(model_name, CHAMPION)
    except MlflowException:
        return {}
    family, params = version.tags.get(f"{TAG_PREFIX}family"), version.tags.get(f"{TAG_PREFIX}params")
    return {family: json.loads(params)} if family and params else {}


def skops_trusted_types(model: Any) -> list[str] | None:
    """MLflow saves sklearn models with skops, which refuses types outside its allow-list on load. The model was
    built here from our own families, so its types are trusted; None when skops is absent (MLflow falls back)."""
    try:
        import skops.io
    except ImportError:
        return None
    return skops.io.get_untrusted_types(data=skops.io.dumps(model))


def _experiment_id(client: Any, name: str) -> str:
    found = client.get_experiment_by_name(name)
    return found.experiment_id if found else client.create_experiment(name)


def registered_from_run(client: Any, model_name: str, run_id: str) -> str | None:
    """The version of `model_name` already registered from `run_id`, if any (the newest one)."""
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name = '{model_name}' and run_id = '{run_id}'")
    except MlflowException:
        return None
    return str(max(int(v.version) for v in versions)) if versions else None


def register_model(data: Dataset, model_name: str, *, client: Any, experiment_id: str, parent_run_id: str,
                   family: str, params: dict[str, Any], cv_score: float, metric: str,
                   plan: dict[str, Any] | None = None, searches: list[dict[str, Any]] | None = None,
                   lineage: dict[str, str] | None = None, seed: int = 0) -> TrainingResult:
    """Refit `family(params)` on all of `data`, log it with a signature into the parent run, register a version,
    point `challenger` at it and tag its lineage. Idempotent per parent run: a retry reuses the version it registered."""
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    data_hash = data.content_hash()
    lineage = {k: str(v) for k, v in {**(lineage or {}), "data.hash": data_hash}.items() if v not in ("", None)}
    # A retried task (the registration happened, then the worker died) finds its version instead of adding one.
    version = registered_from_run(client, model_name, parent_run_id)
    if version is None:
        family_obj = get_family(family, random_state=seed)
        model = family_obj.fit(data.X, data.y, params, data.schema)
        sample = data.X.head(200)
        signature = infer_signature(sample, family_obj.predict(model, sample))
        mlflow.set_experiment(experiment_id=experiment_id)
        with mlflow.start_run(run_id=parent_run_id):
            mlflow.log_params({f"best.{k}": v for k, v in params.items()} | {"best.family": family})
            mlflow.log_metrics({"best_cv_score": cv_score})
            if plan:
                mlflow.log_dict(plan, "plan.json")
            if searches:
                mlflow.log_dict(searches, "searches.json")
            info = mlflow.sklearn.log_model(
                model, name="model", signature=signature, input_example=data.X.head(5),
                registered_model_name=model_name,
                pip_requirements=mlflow.sklearn.get_default_pip_requirements(include_cloudpickle=True),
                skops_trusted_types=skops_trusted_types(model),
            )
        version = str(info.registered_model_version)
    else:
        log.info("version %s of %s was already registered from run %s: reusing it", version, model_name,
                 parent_run_id)
    client.set_registered_model_alias(model_name, CHALLENGER, version)
    version_tags = {f"{TAG_PREFIX}{k}": v for k, v in lineage.items()} | {
        f"{TAG_PREFIX}parent_run_id": parent_run_id, f"{TAG_PREFIX}family": family,
        f"{TAG_PREFIX}params": json.dumps(params, sort_keys=True, default=str),
        f"{TAG_PREFIX}cv_score": f"{cv_score:.6f}", f"{TAG_PREFIX}metric": metric,
    }
    for key, value in version_tags.items():
        client.set_model_version_tag(model_name, version, key, value[:5000])
    return TrainingResult(
        model_name=model_name, version=version, model_uri=f"models:/{model_name}/{version}", run_id=parent_run_id,
        experiment_id=experiment_id, family=family, params=params, cv_score=cv_score, metric=metric,
        data_location=lineage.get("data.location"), data_hash=data_hash,
        lineage={k.removeprefix(TAG_PREFIX): v for k, v in version_tags.items()}, plan=plan or {},
        searches=searches or [],
    )


def train_best(data: Dataset, model_name: str, *, experiment_name: str, plan: ExperimentPlan | None = None,
               budget_trials: int = 20, families: tuple[str, ...] | list[str] = DEFAULT_FAMILIES,
               storage: Any = None, hpo_config: HPOConfig | None = None, timeout_per_family: float | None = None,
               data_location: str | None = None, dag_id: str | None = None, run_id: str | None = None,
               drift_event_id: str | None = None, tracking_uri: str | None = None, use_history: bool = True,
               warm_start_from_champion: bool = True, extra_tags: dict[str, str] | None = None) -> TrainingResult:
    """Run `plan` (or plan from data stats and past trials), register the winner as a new version with alias
    `challenger`. The trials are nested MLflow runs under one parent run, which also holds the model."""
    import mlflow
    from mlflow import MlflowClient

    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient()
    experiment_id = _experiment_id(client, experiment_name)
    lineage = {
        "data.location": data_location or data.location or "",
        "data.hash": data.content_hash(),
        "dag_id": dag_id or "",
        "run_id": run_id or "",
        "package_version": airflow_agentic.__version__,
        "drift_event_id": drift_event_id or "",
        **(extra_tags or {}),
    }
    lineage = {k: str(v) for k, v in lineage.items() if v not in ("", None)}
    parent = client.create_run(experiment_id, run_name=f"train-{model_name}",
                               tags={f"{TAG_PREFIX}{k}": v for k, v in lineage.items()}
                               | {f"{TAG_PREFIX}role": "training"})
    parent_run_id = parent.info.run_id
    try:
        warm = champion_params(model_name, client) if warm_start_from_champion else {}
        if plan is None:
            history = history_from_mlflow(experiment_name) if use_history else {}
            plan = plan_experiments(data.stats(), history, budget_trials=budget_trials, families=families,
                                    champion_params=warm)
        plan.validate()
        base_config = hpo_config or HPOConfig()
        config = HPOConfig(**{**base_config.to_dict(), "metric": plan.metric})
        searches: list[HPOResult] = []
        for item in plan.items:
            searches.append(run_trials(
                f"{model_name}-{parent_run_id}-{item.family}", storage, item.family, data, item.n_trials,
                item.timeout_seconds or timeout_per_family, config=config, parent_run_id=parent_run_id,
                warm_start_params=item.warm_start_params or ([warm[item.family]] if item.family in warm else None),
            ))
        finished = [s for s in searches if s.best_score is not None]
        if not finished:
            raise RuntimeError(f"no trial completed for {model_name}: {[s.to_dict() for s in searches]}")
        best = max(finished, key=lambda s: s.best_score)
        result = register_model(
            data, model_name, client=client, experiment_id=experiment_id, parent_run_id=parent_run_id,
            family=best.family, params=best.best_params, cv_score=best.best_score, metric=plan.metric,
            plan=plan.to_dict(), searches=[s.to_dict() | {"trials": len(s.trials)} for s in searches],
            lineage=lineage, seed=config.seed or 0)
    except BaseException:
        client.set_terminated(parent_run_id, "FAILED")
        raise
    result.searches = [{k: v for k, v in s.to_dict().items() if k != "trials"} for s in searches]
    return result
