"""The Deployment agent (gate -> promote -> serve, or reject) and the Watch agent (champion vs previous on fresh
labels -> rollback). No Airflow here: the registry, the serving target and the notifiers come in as objects.

Bad input stops the agent with a clear message and leaves the champion untouched: no challenger, a challenger
without a signature or that fails to load, a registry that does not answer.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from airflow_agentic.agents.decision import Decision, PlanningContext, finish
from airflow_agentic.agents.loop import Agent, AgentStop
from airflow_agentic.agents.tools import Risk, Toolset, tool

if TYPE_CHECKING:
    import pandas as pd

    from airflow_agentic.models.registry import ModelRegistry
    from airflow_agentic.models.serving import ServingTarget

log = logging.getLogger(__name__)

GATE_TAG = "agentic.gate"
WATCH_TAG = "agentic.watch"


def _registry_down(exc: BaseException) -> bool:
    from airflow_agentic.models.registry import RegistryError, _is_registry_failure

    return isinstance(exc, RegistryError) or _is_registry_failure(exc)


class DeploymentAgent(Agent):
    """Gate the challenger against the champion on held-out labelled data; promote and serve it, or reject it.

    :param production: the `promote` tool is destructive (a person approves it) instead of a plain write.
    :param serving_factory: builds the serving target (called only when the agent serves).
    """

    name = "deployment"
    default_goal = ("promote the challenger only if it beats the champion on recent held-out data by the margin, "
                    "then serve the new champion; otherwise reject the challenger and leave the champion as it is")

    def __init__(self, model_name: str, holdout: tuple[pd.DataFrame, Any], *, registry: ModelRegistry,
                 policy: Any = None, production: bool = False,
                 serving_factory: Callable[[], ServingTarget] | None = None, tracking_uri: str | None = None):
        from airflow_agentic.models.gate import GatePolicy

        self.model_name = model_name
        self.X, self.y = holdout
        self.registry = registry
        self.policy = policy if isinstance(policy, GatePolicy) else GatePolicy.from_dict(policy or {})
        self.production = production
        self.serving_factory = serving_factory
        self.tracking_uri = tracking_uri
        self.verdict: dict[str, Any] | None = None
        self.promotion: dict[str, Any] | None = None
        self.serving: dict[str, Any] | None = None
        self.rejected: dict[str, Any] | None = None
        self._aliases: dict[str, str] | None = None

    def aliases(self) -> dict[str, str]:
        if self._aliases is None:
            try:
                self._aliases = self.registry.aliases(self.model_name)
            except Exception as exc:  # noqa: BLE001
                if _registry_down(exc):
                    raise AgentStop(f"model registry unavailable or {self.model_name!r} not registered: {exc}; "
                                    f"champion untouched") from exc
                raise
        return self._aliases

    def observe(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "aliases": self.aliases(), "holdout_rows": int(len(self.X)),
                "policy": {"metric": self.policy.metric, "margin": self.policy.margin},
                "production": self.production, "verdict": self.verdict, "promoted": self.promotion is not None,
                "served": self.serving is not None, "rejected": self.rejected is not None}

    def toolset(self) -> Toolset:
        @tool(risk=Risk.READ)
        def evaluate_gate() -> dict:
            """Compare challenger and champion on the held-out labelled data (metric with margin, signature,
            prediction distribution, latency). Fails when there is no usable challenger."""
            from airflow_agentic.models.gate import gate_from_registry
            from airflow_agentic.models.registry import CHALLENGER, RegistryError

            challenger = self.aliases().get(CHALLENGER)
            if challenger is None:
                raise AgentStop(f"{self.model_name} has no '{CHALLENGER}' version to evaluate (train one first); "
                                f"champion untouched")
            try:
                self.registry.check_version(self.model_name, challenger)  # signature present, model loads
            except RegistryError as exc:
                raise AgentStop(f"challenger {self.model_name} v{challenger} is not deployable: {exc}") from exc
            try:
                verdict = gate_from_registry(self.model_name, self.X, self.y, policy=self.policy,
                                             tracking_uri=self.tracking_uri)
            except Exception as exc:  # noqa: BLE001
                if _registry_down(exc):
                    raise AgentStop(f"registry unavailable during the gate: {exc}; champion untouched") from exc
                raise
            self.verdict = verdict.to_dict()
            return self.verdict

        promote_risk = Risk.DESTRUCTIVE if self.production else Risk.WRITE

        @tool(risk=promote_risk, side_effects=True)
        def promote(reason: str = "") -> dict:
            """Make the gated challenger the champion (the old champion becomes `previous`)."""
            from airflow_agentic.models.registry import RegistryError

            if not self.verdict or not self.verdict.get("passed"):
                raise ValueError("promote needs a passed gate verdict first (call evaluate_gate)")
            version = self.verdict.get("numbers", {}).get("challenger_version")
            try:
                record = self.registry.promote(self.model_name, version, reason=reason or "; ".join(
                    self.verdict.get("reasons", [])))
            except RegistryError as exc:
                raise AgentStop(f"promotion failed: {exc}") from exc
            self.promotion = record.to_dict()
            self._aliases = None
            return self.promotion

        @tool(risk=Risk.WRITE, side_effects=True)
        def serve() -> dict:
            """Deploy the current champion to the serving target and check its health."""
            if self.serving_factory is None:
                raise ValueError("no serving target configured")
            target = self.serving_factory()
            description = target.deploy(f"models:/{self.model_name}@champion")
            health = target.health()
            self.serving = {**description, "health": health}
            if not health.get("ok"):
                raise RuntimeError(f"serving target unhealthy after deploy: {health}")
            return self.serving

        @tool(risk=Risk.WRITE, side_effects=True)
        def reject_challenger(reason: str = "") -> dict:
            """Record on the challenger version why it was not promoted; the champion stays as it is."""
            from airflow_agentic.models.registry import CHALLENGER

            version = (self.verdict or {}).get("numbers", {}).get("challenger_version") or \
                self.aliases().get(CHALLENGER)
            why = reason or "; ".join((self.verdict or {}).get("reasons", [])) or "rejected"
            if version:
                self.registry.client.set_model_version_tag(self.model_name, version, GATE_TAG, json.dumps(
                    {"passed": False, "reason": why, "numbers": (self.verdict or {}).get("numbers", {})},
                    default=str)[:4900])
            self.rejected = {"version": version, "reason": why}
            return self.rejected

        return Toolset.of([evaluate_gate, promote, serve, reject_challenger])

    def rule_policy(self, ctx: PlanningContext) -> Decision:
        gate = ctx.last("evaluate_gate")
        if gate is None or gate.get("status") != "ok":
            if gate is not None:
                raise AgentStop(f"the gate could not be evaluated: {gate.get('error')}; champion untouched")
            return Decision("evaluate_gate", {}, "compare challenger and champion first")
        if self.verdict is None:
            self.verdict = gate.get("result")
        if ctx.done("reject_challenger"):
            return finish("challenger rejected; champion untouched")
        promoted = ctx.last("promote")
        if not (self.verdict or {}).get("passed"):
            return Decision("reject_challenger", {"reason": "; ".join(self.verdict.get("reasons", []))},
                            "the gate failed")
        if promoted is None:
            return Decision("promote", {"reason": "; ".join(self.verdict.get("reasons", []))}, "the gate passed")
        if promoted.get("status") == "rejected":
            return Decision("reject_challenger", {"reason": "promotion not approved"}, "a person said no")
        if promoted.get("status") != "ok":
            raise AgentStop(f"promotion failed: {promoted.get('error')}")
        if self.serving_factory is not None and ctx.last("serve") is None and "serve" in ctx.tool_names:
            return Decision("serve", {}, "serve the new champion")
        return finish("challenger promoted" + (" and served" if ctx.done("serve") else ""))

    def result(self) -> dict[str, Any]:
        return {"promoted": self.promotion is not None, "verdict": self.verdict, "promotion": self.promotion,
                "serving": self.serving, "rejected": self.rejected}


# ---------------------------------------------------------------------------------------------------- watch
def _load_alias(model_name: str, alias: str, client: Any) -> tuple[Any, str | None, str | None]:
    """(model, version, load error) of `models:/name@alias`; the sklearn flavour when possible."""
    import mlflow.pyfunc
    import mlflow.sklearn

    try:
        version = str(client.get_model_version_by_alias(model_name, alias).version)
    except Exception as exc:  # noqa: BLE001
        if _registry_down(exc) and "RESOURCE_DOES_NOT_EXIST" not in str(exc) and "not found" not in str(exc).lower():
            raise
        return None, None, f"no '{alias}' alias"
    uri = f"models:/{model_name}/{version}"
    try:
        try:
            return mlflow.sklearn.load_model(uri), version, None
        except Exception:  # noqa: BLE001 - not a sklearn model
            return mlflow.pyfunc.load_model(uri), version, None
    except Exception as exc:  # noqa: BLE001
        return None, version, f"{type(exc).__name__}: {exc}"[:500]


def score_model(model: Any, X: pd.DataFrame, y: Any, repeats: int = 3) -> dict[str, Any]:
    """Accuracy, prediction errors and latency (ms per 1,000 rows, best of `repeats`) on a labelled batch."""
    y = np.asarray(y)
    try:
        model.predict(X.head(5))
        best = float("inf")
        labels = None
        for _ in range(max(1, repeats)):
            started = time.perf_counter()
            labels = np.asarray(model.predict(X))
            best = min(best, time.perf_counter() - started)
    except Exception as exc:  # noqa: BLE001 - a model that cannot predict is the worst kind of worse
        return {"accuracy": None, "errors": len(X), "error": f"{type(exc).__name__}: {exc}"[:300],
                "latency_ms_per_1k": None}
    if labels.ndim > 1:
        labels = labels.reshape(len(X), -1)[:, 0]
    correct = labels.astype(str) == y.astype(str)
    return {"accuracy": float(np.mean(correct)), "errors": int((~correct).sum()), "rows": int(len(X)),
            "latency_ms_per_1k": best * 1000 * 1000 / max(len(X), 1)}


class WatchAgent(Agent):
    """After a promotion: is the new champion worse than `previous` on newly labelled data? If so, roll back.

    Worse means any of: accuracy lower by more than `margin`, the champion fails to load or predict while the
    previous model works, or latency above `max_latency_ratio` times the previous model's.
    """

    name = "model_watch"
    default_goal = ("keep the better model in production: compare the champion with the previous champion on "
                    "newly labelled data and roll back when the champion is worse by the margin")

    def __init__(self, model_name: str, batch: tuple[pd.DataFrame, Any], *, registry: ModelRegistry,
                 margin: float = 0.02, max_latency_ratio: float | None = 5.0, min_rows: int = 50,
                 notify: Callable[[dict[str, Any]], Any] | None = None, batch_location: str | None = None):
        self.model_name = model_name
        self.X, self.y = batch
        self.registry = registry
        self.margin = float(margin)
        self.max_latency_ratio = max_latency_ratio
        self.min_rows = int(min_rows)
        self.notify = notify
        self.batch_location = batch_location
        self.comparison: dict[str, Any] | None = None
        self.rollback_record: dict[str, Any] | None = None
        self.alerted: dict[str, Any] | None = None

    def observe(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "rows": int(len(self.X)), "margin": self.margin,
                "comparison": self.comparison, "rolled_back": self.rollback_record is not None,
                "alerted": self.alerted is not None}

    def toolset(self) -> Toolset:
        @tool(risk=Risk.READ)
        def compare_models() -> dict:
            """Score `champion` and `previous` on the newly labelled batch: accuracy, prediction errors, latency."""
            from airflow_agentic.models.registry import CHAMPION, PREVIOUS

            try:
                champion, champion_version, champion_error = _load_alias(self.model_name, CHAMPION,
                                                                         self.registry.client)
                previous, previous_version, previous_error = _load_alias(self.model_name, PREVIOUS,
                                                                         self.registry.client)
            except Exception as exc:  # noqa: BLE001
                raise AgentStop(f"model registry unavailable: {exc}; champion untouched") from exc
            if champion_version is None:
                raise AgentStop(f"{self.model_name} has no champion to watch")
            out: dict[str, Any] = {"champion_version": champion_version, "previous_version": previous_version,
                                   "rows": int(len(self.X)), "margin": self.margin, "worse": False, "reasons": []}
            if previous is None:
                out["reasons"].append(f"nothing to compare with: {previous_error}")
                self.comparison = out
                return out
            if len(self.X) < self.min_rows:
                out["reasons"].append(f"only {len(self.X)} labelled rows (< {self.min_rows}): no decision")
                self.comparison = out
                return out
            new = score_model(champion, self.X, self.y) if champion is not None else {
                "accuracy": None, "errors": len(self.X), "error": champion_error, "latency_ms_per_1k": None}
            old = score_model(previous, self.X, self.y)
            out.update(champion=new, previous=old)
            if old["accuracy"] is None:
                out["reasons"].append(f"previous v{previous_version} cannot predict either ({old.get('error')}): "
                                      f"a rollback would not help")
            elif new["accuracy"] is None:
                out["worse"] = True
                out["reasons"].append(f"champion v{champion_version} fails: {new.get('error')}")
            else:
                drop = old["accuracy"] - new["accuracy"]
                out["accuracy_drop"] = drop
                if drop > self.margin:
                    out["worse"] = True
                    out["reasons"].append(f"accuracy {new['accuracy']:.4f} vs previous {old['accuracy']:.4f}: "
                                          f"worse by {drop:.4f} > margin {self.margin}")
                else:
                    out["reasons"].append(f"accuracy {new['accuracy']:.4f} vs previous {old['accuracy']:.4f}: "
                                          f"within margin {self.margin}")
                if self.max_latency_ratio and old["latency_ms_per_1k"] and new["latency_ms_per_1k"] and \
                        new["latency_ms_per_1k"] > self.max_latency_ratio * old["latency_ms_per_1k"]:
                    out["worse"] = True
                    out["reasons"].append(f"latency {new['latency_ms_per_1k']:.1f} ms/1k over "
                                          f"{self.max_latency_ratio}x the previous {old['latency_ms_per_1k']:.1f}")
            self.comparison = out
            return out

        @tool(risk=Risk.DESTRUCTIVE, side_effects=True)
        def rollback(reason: str) -> dict:
            """Point `champion` back at `previous` and record why in the registry (history tags)."""
            from airflow_agentic.models.registry import RegistryError

            try:
                record = self.registry.rollback(self.model_name, reason)
            except RegistryError as exc:
                raise AgentStop(f"rollback failed: {exc}") from exc
            try:
                self.registry.client.set_model_version_tag(
                    self.model_name, record.from_version, WATCH_TAG,
                    json.dumps({"rolled_back": True, "reason": reason, "batch": self.batch_location,
                                "comparison": {k: (self.comparison or {}).get(k)
                                               for k in ("champion", "previous", "accuracy_drop")}},
                               default=str)[:4900])
            except Exception as exc:  # noqa: BLE001 - the rollback itself is recorded in the model's history
                log.warning("could not tag version %s: %s", record.from_version, exc)
            self.rollback_record = record.to_dict()
            return self.rollback_record

        @tool(risk=Risk.WRITE, side_effects=True)
        def alert(message: str) -> dict:
            """Tell people what happened (the task's notifiers)."""
            payload = {"model_name": self.model_name, "message": message, "comparison": self.comparison,
                       "rollback": self.rollback_record}
            sent = self.notify(payload) if self.notify else None
            self.alerted = {"message": message, "sent": bool(sent)}
            return self.alerted

        return Toolset.of([compare_models, rollback, alert])

    def rule_policy(self, ctx: PlanningContext) -> Decision:
        compared = ctx.last("compare_models")
        if compared is None:
            return Decision("compare_models", {}, "score champion and previous on the new labels")
        if compared.get("status") != "ok":
            raise AgentStop(f"comparison failed: {compared.get('error')}")
        comparison = self.comparison or compared.get("result") or {}
        reasons = "; ".join(comparison.get("reasons", []))
        if not comparison.get("worse"):
            return finish(f"champion holds: {reasons}")
        rolled = ctx.last("rollback")
        if rolled is None:
            return Decision("rollback", {"reason": reasons}, "the champion is worse than the previous model")
        if not ctx.last("alert") and "alert" in ctx.tool_names:
            what = "rolled back" if rolled.get("status") == "ok" else f"rollback {rolled.get('status')}"
            return Decision("alert", {"message": f"{self.model_name}: {what} ({reasons})"}, "tell people")
        return finish("rolled back" if rolled.get("status") == "ok" else f"rollback {rolled.get('status')}")

    def result(self) -> dict[str, Any]:
        comparison = self.comparison or {}
        return {"rolled_back": self.rollback_record is not None, "comparison": self.comparison,
                "rollback": self.rollback_record, "alerted": self.alerted,
                "champion_version": comparison.get("champion_version"),
                "previous_version": comparison.get("previous_version")}
