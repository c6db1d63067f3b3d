"""The Architect + HPO agent: plan which model families to search (architect), search each one (Optuna trials as
nested MLflow runs), then refit the best configuration and register it as the `challenger`. No Airflow here.

Durable replay: `search_family` and `register_best` have side effects and are not repeated on a retry, so nothing the
later steps need lives only in memory. Studies have deterministic names (`<run_key>-<family>`) in a persistent Optuna
storage and the MLflow parent run is found again by its `agentic.run_key` tag; `register_best` reads the best trial
back from the storage.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from airflow_agentic.agents.decision import Decision, PlanningContext, finish
from airflow_agentic.agents.loop import Agent, AgentStop
from airflow_agentic.agents.tools import Risk, Toolset, tool

if TYPE_CHECKING:
    from airflow_agentic.models.architect import ExperimentPlan
    from airflow_agentic.models.dataset import Dataset
    from airflow_agentic.models.training import TrainingResult

log = logging.getLogger(__name__)

RUN_KEY_TAG = "agentic.run_key"


def study_name_for(run_key: str, family: str) -> str:
    return f"{run_key}-{family}"


def safe_key(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:200]


def ensure_parent_run(client: Any, experiment_name: str, run_key: str, *, run_name: str,
                      tags: dict[str, str] | None = None) -> tuple[str, str]:
    """Find or create the one parent run tagged `agentic.run_key=run_key` -> (experiment_id, run_id).

    Safe to race (mapped workers): after creating, every caller picks the oldest run with the key and deletes its
    own if it lost, so all of them nest their trials under the same parent.
    """
    found = client.get_experiment_by_name(experiment_name)
    if found is not None:
        experiment_id = found.experiment_id
    else:
        try:
            experiment_id = client.create_experiment(experiment_name)
        except Exception:  # noqa: BLE001 - another worker created it first
            experiment_id = client.get_experiment_by_name(experiment_name).experiment_id

    def search() -> list[Any]:
        runs = client.search_runs([experiment_id], filter_string=f"tags.`{RUN_KEY_TAG}` = '{run_key}'",
                                  max_results=50)
        return sorted(runs, key=lambda r: (r.info.start_time or 0, r.info.run_id))

    existing = search()
    if existing:
        return experiment_id, existing[0].info.run_id
    mine = client.create_run(experiment_id, run_name=run_name,
                             tags={**(tags or {}), RUN_KEY_TAG: run_key, "agentic.role": "training"}).info.run_id
    winner = search()[0].info.run_id
    if winner != mine:
        client.delete_run(mine)
    return experiment_id, winner


def best_of_studies(study_names: list[str], storage: Any) -> dict[str, Any]:
    """The best completed trial across studies: {"study", "family", "params", "score", "n_complete"}."""
    import optuna
    from optuna.trial import TrialState

    from airflow_agentic.models.hpo import best_trial, resolve_storage

    resolved = resolve_storage(storage)
    best: dict[str, Any] | None = None
    total = 0
    for name in study_names:
        try:
            study = optuna.load_study(study_name=name, storage=resolved)
        except KeyError:
            continue
        complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
        total += len(complete)
        if not complete:
            continue
        top = best_trial(complete)  # ties broken as the study's own summary does (planned studies: plan order)
        family = study.user_attrs.get("family") or name.rsplit("-", 1)[-1]
        score = float(top.user_attrs.get("score", top.value))
        if best is None or top.value > best["value"]:
            best = {"study": name, "family": family, "params": dict(top.params), "score": score,
                    "value": float(top.value), "trial": top.number}
    if best is None:
        raise AgentStop(f"no completed trial in studies {study_names}: nothing to register")
    best["n_complete"] = total
    return best


class TrainingAgent(Agent):
    """Architect + HPO. Observes data stats, past trials of the experiment and the champion's configuration.

    :param data: the clean training data.
    :param run_key: stable identity of this training (same across retries), e.g. ``dag.task.run``.
    :param families: families the architect may use; None = the architect's defaults.
    :param study_name: a finished (e.g. mapped, parallel) study to register the best of; no search then.
    """

    name = "training"
    default_goal = ("train a better model: plan the experiments from the data and past trials, search the planned "
                    "families, then register the best as the challenger")

    def __init__(self, data: Dataset, *, model_name: str, experiment_name: str, run_key: str,
                 client: Any, tracking_uri: str | None = None, families: list[str] | None = None,
                 metric: str | None = "accuracy", n_trials: int = 20, timeout: float | None = None,
                 storage: Any = None, warm_start: bool = True, study_name: str | None = None,
                 lineage: dict[str, str] | None = None, hpo_config: dict[str, Any] | None = None):
        self.data = data
        self.model_name = model_name
        self.experiment_name = experiment_name
        self.run_key = safe_key(run_key)
        self.client = client
        self.tracking_uri = tracking_uri
        self.families = list(families) if families else None
        self.metric = metric
        self.n_trials = int(n_trials)
        self.timeout = timeout
        self.storage = storage
        self.warm_start = warm_start
        self.study_name = study_name
        self.lineage = dict(lineage or {})
        self.hpo_config = dict(hpo_config or {})
        self.plan: ExperimentPlan | None = None
        self.searches: dict[str, dict[str, Any]] = {}
        self.training: TrainingResult | None = None
        self._history: dict[str, Any] | None = None
        self._champion: dict[str, Any] | None = None
        self._parent: tuple[str, str] | None = None

    # -- what the agent sees --------------------------------------------------------------------------------------
    def history(self) -> dict[str, Any]:
        if self._history is None:
            from airflow_agentic.models.architect import history_from_mlflow

            try:
                self._history = history_from_mlflow(self.experiment_name, tracking_uri=self.tracking_uri)
            except Exception as exc:  # noqa: BLE001 - no history is a valid start
                log.warning("could not read past trials of %s: %s", self.experiment_name, exc)
                self._history = {}
        return self._history

    def champion(self) -> dict[str, Any]:
        if self._champion is None:
            from airflow_agentic.models.training import champion_params

            try:
                self._champion = champion_params(self.model_name, self.client) if self.warm_start else {}
            except Exception:  # noqa: BLE001 - the model may not exist yet
                self._champion = {}
        return self._champion

    def parent(self) -> tuple[str, str]:
        if self._parent is None:
            self._parent = ensure_parent_run(
                self.client, self.experiment_name, self.run_key, run_name=f"train-{self.model_name}",
                tags={f"agentic.{k}": str(v) for k, v in self.lineage.items() if v not in ("", None)})
        return self._parent

    def observe(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "data": self.data.stats().to_dict(),
            "metric": self.metric,
            "trial_budget": self.n_trials,
            "finished_study": self.study_name,
            "past_trials": {f: {"best_score": h.best_score, "n_trials": h.n_trials} for f, h in self.history().items()},
            "champion_families": sorted(self.champion()),
            "plan": [{"family": i.family, "n_trials": i.n_trials, "reason": i.reason} for i in self.plan.items]
            if self.plan else None,
            "searched": {f: {"best_score": s.get("best_score"), "n_complete": s.get("n_complete")}
                         for f, s in self.searches.items()},
            "registered": self.training.version if self.training else None,
        }

    # -- tools ----------------------------------------------------------------------------------------------------
    def hpo_config_for(self, metric: str) -> Any:
        from airflow_agentic.models.hpo import HPOConfig

        return HPOConfig(**{**self.hpo_config, "metric": metric})

    def toolset(self) -> Toolset:
        @tool(risk=Risk.READ)
        def plan_experiments() -> dict:
            """Ask the architect which model families to search and with how many trials (from the data's stats,
            the experiment's past trials and the champion's configuration)."""
            from airflow_agentic.models.architect import DEFAULT_FAMILIES
            from airflow_agentic.models.architect import plan_experiments as architect

            plan = architect(self.data.stats(), self.history(), budget_trials=self.n_trials,
                             families=self.families or DEFAULT_FAMILIES,
                             min_trials=max(1, min(4, self.n_trials // len(self.families or DEFAULT_FAMILIES))),
                             champion_params=self.champion())
            if self.metric:
                plan.metric = self.metric
            # The architect keeps each family at `min_trials`; the task's budget is a hard cap.
            while plan.total_trials > self.n_trials and len(plan.items) > 1:
                plan.items.pop()
                plan.total_trials = sum(i.n_trials for i in plan.items)
            self.plan = plan
            return {"metric": plan.metric, "total_trials": plan.total_trials, "notes": plan.notes,
                    "items": [{"family": i.family, "n_trials": i.n_trials, "reason": i.reason} for i in plan.items]}

        @tool(risk=Risk.WRITE, side_effects=True)
        def search_family(family: str, n_trials: int) -> dict:
            """Run `n_trials` Optuna trials of one model family (nested MLflow runs under the training run)."""
            from airflow_agentic.models.families import available_families
            from airflow_agentic.models.hpo import run_trials

            if family not in available_families():
                raise ValueError(f"unknown family {family!r}; known: {available_families()}")
            if self.families and family not in self.families:
                raise ValueError(f"family {family!r} is not allowed here; allowed: {self.families}")
            spent = sum(s.get("trials_run", 0) for s in self.searches.values())
            n_trials = max(1, min(int(n_trials), self.n_trials - spent if spent < self.n_trials else 1))
            item = next((i for i in (self.plan.items if self.plan else []) if i.family == family), None)
            warm = (item.warm_start_params if item else None) or (
                [self.champion()[family]] if family in self.champion() else None)
            _, parent_run_id = self.parent()
            metric = self.plan.metric if self.plan else (self.metric or "accuracy")
            result = run_trials(study_name_for(self.run_key, family), self.storage, family, self.data, n_trials,
                                self.timeout, config=self.hpo_config_for(metric), parent_run_id=parent_run_id,
                                tracking_uri=self.tracking_uri, warm_start_params=warm)
            summary = {k: v for k, v in result.to_dict().items() if k not in ("trials", "config")}
            summary["trials_run"] = len(result.trials)
            self.searches[family] = summary
            return summary

        @tool(risk=Risk.WRITE, side_effects=True)
        def register_best() -> dict:
            """Refit the best configuration found on all the data, log it to MLflow with a signature and register it
            as a new version with the alias `challenger` and lineage tags."""
            if self.study_name:
                studies = [self.study_name]
            else:
                families = [i.family for i in self.plan.items] if self.plan else list(self.searches)
                studies = [study_name_for(self.run_key, f) for f in (families or self.families or [])]
            best = best_of_studies(studies, self.storage)
            experiment_id, parent_run_id = self.parent()
            metric = (self.plan.metric if self.plan else None) or self.metric or "accuracy"
            from airflow_agentic.models.training import register_model

            self.training = register_model(
                self.data, self.model_name, client=self.client, experiment_id=experiment_id,
                parent_run_id=parent_run_id, family=best["family"], params=best["params"], cv_score=best["score"],
                metric=metric, plan=self.plan.to_dict() if self.plan else None,
                searches=list(self.searches.values()) or [{"study": best["study"], "n_complete": best["n_complete"]}],
                lineage={**self.lineage, "study": best["study"]}, seed=int(self.hpo_config.get("seed") or 0))
            return self.compact_result()

        return Toolset.of([plan_experiments, search_family, register_best])

    def compact_result(self) -> dict[str, Any]:
        if self.training is None:
            return {}
        t = self.training
        return {"model_name": t.model_name, "version": t.version, "model_uri": t.model_uri, "run_id": t.run_id,
                "experiment_id": t.experiment_id, "family": t.family, "cv_score": t.cv_score, "metric": t.metric}

    # -- the rule policy: plan, search each planned family, register -----------------------------------------------
    def rule_policy(self, ctx: PlanningContext) -> Decision:
        names = ctx.tool_names
        registered = ctx.last("register_best")
        if registered is not None:
            if registered.get("status") == "ok":
                return finish(f"registered version {(registered.get('result') or {}).get('version')}")
            raise AgentStop(f"registering the best model failed: {registered.get('error')}")
        if self.study_name:
            return Decision("register_best", {}, f"study {self.study_name} finished: register its best trial")
        if self.plan is None and "plan_experiments" in names:
            return Decision("plan_experiments", {}, "no plan yet: ask the architect")
        if self.plan is None:
            raise AgentStop("no plan and plan_experiments is not allowed")
        searched = {h["tool"] + ":" + str(h["arguments"].get("family")) for h in ctx.history
                    if h["tool"] == "search_family"}
        for item in self.plan.items:
            if f"search_family:{item.family}" not in searched and "search_family" in names:
                return Decision("search_family", {"family": item.family, "n_trials": item.n_trials},
                                f"architect planned {item.n_trials} trials of {item.family}: {item.reason}")
        if not any(h["tool"] == "search_family" and h["status"] == "ok" for h in ctx.history):
            raise AgentStop("every planned search failed: " + "; ".join(
                str(h.get("error")) for h in ctx.history if h["tool"] == "search_family"))
        return Decision("register_best", {}, "every planned family searched: register the best")

    def result(self) -> dict[str, Any]:
        return self.training.to_dict() if self.training else {}
