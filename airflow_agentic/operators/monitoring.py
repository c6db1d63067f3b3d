"""``MonitoringAgentOperator``: the Monitoring & Adaptation agent in a task.

It builds the :class:`~airflow_agentic.agents.monitoring.MonitoringAgent` from a drift report (e.g. a
``DriftSensor``'s XCom) and the champion's delayed-label performance, runs it through ``AgentOperator`` (planner,
approvals, replay, trace) and wires its callbacks to Airflow:

- ``request_retraining`` -> an Asset event on ``retraining_asset`` with the request in ``extra``; a DAG scheduled on
  that asset runs the retraining. The asset is a declared outlet (lineage in the UI), but Airflow 3.3 emits an event
  for every static outlet of a successful task, so on any other decision it is withheld for this try.
- every action (alert, retraining, rollback, data steward) -> the ``notifiers`` with ``context["agentic_event"]``.

The task returns the ``MonitoringDecision`` dict. With ``state_variable`` the agent's memory (cool-down, in-flight
retraining, last alert) lives in that Airflow Variable between runs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_agentic.links.agentic_ui import DriftReportLink
from airflow_agentic.operators.agent import AgentOperator

if TYPE_CHECKING:
    from airflow.sdk import Asset, BaseNotifier, Context

    from airflow_agentic.agents import Agent, AgentRun

log = logging.getLogger(__name__)

NOTIFY_ON = ("alert", "request_retraining", "request_rollback", "send_to_data_steward")


def _native(value: Any) -> Any:
    from airflow_agentic.operators._mlops import native

    return native(value, strict=True)


class MonitoringAgentOperator(AgentOperator):
    """Decide what a batch's drift and performance evidence call for.

    :param drift_report: ``DriftReport`` dict (templated; ``sensor.output`` or a Jinja XCom pull).
    :param performance: the champion's evidence, either ``performance_evidence(...)`` output or
        ``{"records": [BatchPerformance dicts], "champion": "v3", "previous": "v2", "expected": {...}}`` (templated).
    :param quality: the batch's data-quality summary (``rows``, ``quarantined``, ``quarantined_share``, ...).
    :param monitor_report: ``PerformanceMonitor.report()`` (ADWIN change flag) (templated).
    :param retraining: what the champion was trained on (``kind``, ``change_point``, ``trained_until``).
    :param batch: batch number (templated; default the latest labelled batch).
    :param policy: ``MonitoringPolicy`` fields to override.
    :param state_variable: Airflow Variable holding ``MonitoringState`` between runs (None: start fresh).
    :param retraining_asset: Asset (or its name) that gets an event when the agent requests retraining.
    :param notifiers: notifiers called for each action in ``notify_on``.
    """

    template_fields: Sequence[str] = (*AgentOperator.template_fields, "drift_report", "performance", "quality",
                                      "monitor_report", "retraining", "batch")
    template_fields_renderers = {**AgentOperator.template_fields_renderers, "drift_report": "json",
                                 "performance": "json", "quality": "json"}
    operator_extra_links = (*AgentOperator.operator_extra_links, DriftReportLink())
    ui_color = "#e8fdf0"

    def __init__(self, *, drift_report: Any = None, performance: Any = None, quality: Any = None,
                 monitor_report: Any = None, retraining: Any = None, batch: int | str | None = None,
                 policy: dict[str, Any] | None = None, state_variable: str | None = None,
                 retraining_asset: Asset | str | None = None, notifiers: Sequence[BaseNotifier] = (),
                 notify_on: Sequence[str] = NOTIFY_ON, **kwargs: Any) -> None:
        if isinstance(retraining_asset, str):
            from airflow.sdk import Asset

            retraining_asset = Asset(retraining_asset)
        if retraining_asset is not None:
            outlets = list(kwargs.pop("outlets", None) or [])
            if retraining_asset not in outlets:
                outlets.append(retraining_asset)
            kwargs["outlets"] = outlets
        super().__init__(**kwargs)
        self.drift_report = drift_report
        self.performance = performance
        self.quality = quality
        self.monitor_report = monitor_report
        self.retraining = retraining
        self.batch = batch
        self.policy = policy
        self.state_variable = state_variable
        self.retraining_asset = retraining_asset
        self.notifiers = list(notifiers)
        self.notify_on = list(notify_on)

    # ------------------------------------------------------------------ evidence
    def signals(self) -> dict[str, Any]:
        from airflow_agentic.agents.monitoring import (
            BatchPerformance,
            MonitoringPolicy,
            build_signals,
            performance_evidence,
        )

        drift = _native(self.drift_report) or {}
        performance = _native(self.performance) or {}
        if "records" in performance:
            records = [BatchPerformance.from_dict(r) for r in performance["records"]]
            champion = performance.get("champion") or (records[-1].version if records else "champion")
            performance = performance_evidence(records, champion, previous=performance.get("previous"),
                                               expected=performance.get("expected"),
                                               policy=MonitoringPolicy.from_dict(self.policy))
        batch = _native(self.batch) if isinstance(self.batch, str) else self.batch
        if batch is None:
            batch = performance.get("latest_batch") or 0
        return build_signals(batch=int(batch), drift=drift, quality=_native(self.quality) or {},
                             performance=performance, monitor_report=_native(self.monitor_report) or {},
                             retraining=_native(self.retraining) or {})

    def _load_state(self) -> Any:
        from airflow_agentic.agents.monitoring import MonitoringState

        if not self.state_variable:
            return MonitoringState()
        from airflow.sdk import Variable

        return MonitoringState.from_dict(Variable.get(self.state_variable, default=None, deserialize_json=True))

    # ------------------------------------------------------------------ the agent
    def build_agent(self, context: Context) -> Agent:
        from airflow_agentic.agents.monitoring import MonitoringAgent, MonitoringPolicy

        self._drift = _native(self.drift_report) or {}

        def callback(kind: str):
            def call(payload: dict[str, Any]) -> dict[str, Any]:
                self._notify(context, kind, payload)
                return {"notified": kind in self.notify_on and bool(self.notifiers)}
            return call

        return MonitoringAgent(self.signals(), policy=MonitoringPolicy.from_dict(self.policy),
                               state=self._load_state(), on_alert=callback("alert"),
                               on_retrain=callback("request_retraining"), on_rollback=callback("request_rollback"),
                               on_steward=callback("send_to_data_steward"))

    def _notify(self, context: Context, kind: str, payload: dict[str, Any]) -> None:
        if kind not in self.notify_on:
            return
        event = {"kind": kind, "payload": payload, "drift": self._drift or None}
        for notifier in self.notifiers:
            try:
                notifier({**context, "agentic_event": event})
            except Exception as exc:  # noqa: BLE001 - a dead webhook must not undo the decision
                self.log.warning("notifier %s failed for %s: %s", type(notifier).__name__, kind, exc)

    def on_finish(self, context: Context, run: AgentRun) -> Any:
        result = run.result or {}
        decision = dict(result.get("decision") or {})
        if self.state_variable and result.get("state") is not None:
            from airflow.sdk import Variable

            Variable.set(self.state_variable, result["state"], serialize_json=True)
        self.log.info("Monitoring decision: %s (%s)", decision.get("action"), "; ".join(decision.get("reasons") or []))
        if self.retraining_asset is not None:
            if decision.get("action") == "request_retraining" or decision.get("retrain"):
                drift = self._drift or {}
                context["outlet_events"][self.retraining_asset].extra = {
                    "action": "request_retraining", "retrain": decision.get("retrain"),
                    "batch": decision.get("batch"), "reasons": list(decision.get("reasons") or [])[:5],
                    "drift": {"detected": bool(drift.get("detected")), "score": drift.get("score"),
                              "drifted_columns": list(drift.get("drifted_columns") or [])[:20]},
                }
            else:
                # Static outlets always get an event on success: withhold this one, the agent asked for nothing.
                self.outlets = [o for o in self.outlets if o != self.retraining_asset]
        return decision


class MonitorBatchOperator(MonitoringAgentOperator):
    """The flywheel's monitoring step on clean batches: the same code as the backtest's (``flywheel.monitor.Watch``).

    For each clean batch (the Data Steward's outputs, by default those named by the triggering
    ``agentic_clean_batch`` events): predict with the champion and shadow-score the earlier champions
    (``<data_root>/predictions/<batch>.parquet``), join the batch's labels when it has them, check feature and
    prediction drift against the champion's profile, and build the evidence; then the monitoring agent decides on the
    newest batch (planner, guardrails, approvals and trace as in every agent operator). What the step remembers
    between batches (performance records, the agent's cool-down, the ADWIN error stream, predictions waiting for
    labels) is the ``Watch``, kept in Airflow's asset state store (3.3+, AIP-103) of ``state_asset`` (the monitored
    batches' Asset, by default ``agentic_clean_batch``) under ``watch/<model>``: Airflow's database, or the object
    storage its ``[workers] state_store_backend`` names, under Airflow's retention. ``watch_path`` keeps it in a
    JSON file instead. The decision, with the retraining request, is written to ``<data_root>/reports/<batch>.json``,
    which the drift Asset's watcher reads.

    :param clean_batches: clean batch URL(s) (templated); default: the triggering events' ``outputs["clean"]``.
    :param model_name: registered model (default ``[agentic] model_name``).
    :param data_root: the flywheel's data root (default ``[agentic] data_root``).
    :param target: label column (rows without a label are scored, not judged); ``id_column``: row ids.
    :param conn_id: object-store connection for the batches; ``mlflow_conn_id``: MLflow connection.
    :param state_asset: the Asset (or its name) whose state store keeps the watch (added to the task's inlets).
    :param watch_path: keep the watch in this JSON file (ObjectStoragePath URL, templated) instead.
    """

    template_fields: Sequence[str] = (*MonitoringAgentOperator.template_fields, "clean_batches", "model_name",
                                      "data_root", "watch_path")

    def __init__(self, *, clean_batches: Any = None, model_name: str | None = None, data_root: str | None = None,
                 target: str = "label", id_column: str | None = "row_id", conn_id: str | None = None,
                 mlflow_conn_id: str | None = "mlflow_default", state_asset: Asset | str = "agentic_clean_batch",
                 watch_path: str | None = None, **kwargs: Any) -> None:
        from airflow.sdk import Asset

        self.state_asset = Asset(state_asset) if isinstance(state_asset, str) else state_asset
        inlets = list(kwargs.pop("inlets", None) or [])
        if self.state_asset not in inlets:
            inlets.append(self.state_asset)
        super().__init__(inlets=inlets, **kwargs)
        self.watch_path = watch_path
        self.clean_batches = clean_batches
        self.model_name = model_name
        self.data_root = data_root
        self.target = target
        self.id_column = id_column
        self.conn_id = conn_id
        self.mlflow_conn_id = mlflow_conn_id

    def _batches(self, context: Context) -> list[tuple[str, dict[str, Any]]]:
        """(clean batch URL, the steward's counts) of every batch to score, oldest first."""
        from airflow_agentic.operators._mlops import native

        given = native(self.clean_batches)  # a rendered list comes back as a list, a single URL as itself
        if given:
            return [(str(url), {}) for url in ([given] if isinstance(given, str) else given)]
        found = []
        for events in (context.get("triggering_asset_events") or {}).values():
            for event in events:
                extra = event.extra or {}
                clean = (extra.get("outputs") or {}).get("clean")
                if clean:
                    found.append((str(clean), dict(extra.get("counts") or {})))
        if not found:
            raise ValueError("no clean batch: run from an agentic_clean_batch event or pass clean_batches")
        return found

    def _paths(self, name: str) -> dict[str, str]:
        from airflow_agentic import config

        root = (self.data_root or config.data_root()).rstrip("/")
        return {"predictions": f"{root}/predictions/{name}.parquet", "report": f"{root}/reports/{name}.json"}

    def _watch_keeper(self, context: Context, model: str) -> WatchKeeper:
        if self.watch_path:
            return WatchKeeper(path=self.watch_path, conn_id=self.conn_id)
        stores = context.get("asset_state_store")
        if stores is None:  # Airflow < 3.3: no state store; a file beside the data, as before
            from airflow_agentic import config

            root = (self.data_root or config.data_root()).rstrip("/")
            self.log.warning("no asset state store in this Airflow: the watch is kept in %s/monitoring", root)
            return WatchKeeper(path=f"{root}/monitoring/watch-{model}.json", conn_id=self.conn_id)
        return WatchKeeper(store=stores[self.state_asset], key=f"watch/{model}")

    def build_agent(self, context: Context) -> Agent:
        """Score the batches into the Watch (kept in memory until the decision is taken), then the agent."""
        from airflow_agentic import config
        from airflow_agentic.agents.monitoring import MonitoringPolicy
        from airflow_agentic.data import io as dio
        from airflow_agentic.flywheel.monitor import Watch, drift_check
        from airflow_agentic.flywheel.store import MlflowStore
        from airflow_agentic.operators.continuous import batch_name, batch_number

        model = self.model_name or config.model_name()
        tracking_uri = config.mlflow_tracking_uri(self.mlflow_conn_id)
        store = MlflowStore(model, tracking_uri)
        with config.mlflow_tracking(tracking_uri):
            champion = store.champion()
            if champion is None:
                raise ValueError(f"{model} has no champion in {tracking_uri}: train and promote a first version")
            earlier = store.earlier()
        # By number: steward outputs can land out of order, and the agent decides on the newest batch (the last).
        batches = sorted(self._batches(context), key=lambda found: batch_number(found[0]))
        names = [batch_name(url) for url, _ in batches]
        self._name = names[-1]
        self._keeper = self._watch_keeper(context, model)
        # The first batch starts a new watch; an unreadable one fails the task (starting afresh would forget).
        self._watch = self._keeper.load()
        for (url, counts), name in zip(batches, names):
            number = batch_number(url)
            frame = dio.read_batch(url, conn_id=self.conn_id)
            ids = frame[self.id_column].to_numpy() if self.id_column and self.id_column in frame.columns \
                else frame.index.to_numpy()
            X = frame.drop(columns=[c for c in (self.target, self.id_column) if c and c in frame.columns])
            predictions = self._watch.score(number, X, ids, champion, earlier)
            scored = frame[[self.id_column]].copy() if self.id_column in frame.columns else frame.iloc[:, :0].copy()
            scored["prediction"] = predictions
            scored["model_version"] = champion.version
            dio.write_frame(scored, self._paths(name)["predictions"], conn_id=self.conn_id)
            labelled = self.target in frame.columns and frame[self.target].notna().all()
            if labelled:
                self._watch.label(number, frame[self.target].to_numpy())
            rows, quarantined = int(counts.get("input") or len(frame)), int(counts.get("quarantined") or 0)
            quality = {"rows": rows, "quarantined": quarantined, "by_reason": counts.get("by_reason") or {},
                       "quarantined_share": quarantined / rows if rows else 0.0}
            self._drift = drift_check(champion.profile, X, predictions)
            self.log.info("batch %s: champion v%s, %s, drift %s %s", name, champion.version,
                          f"accuracy {self._watch.records[-1].accuracy:.4f}" if labelled else "no labels yet",
                          self._drift.get("detected"), self._drift.get("drifted_columns"))
            labelled_upto = max((r.batch for r in self._watch.records), default=None)
            self._signals = self._watch.signals(batch=number, drift=self._drift, quality=quality,
                                                champion=champion, labelled_upto=labelled_upto,
                                                policy=MonitoringPolicy.from_dict(self.policy))
        self._champion = champion.version
        return super().build_agent(context)

    def signals(self) -> dict[str, Any]:
        return self._signals

    def _load_state(self) -> Any:
        return self._watch.state

    def on_finish(self, context: Context, run: AgentRun) -> Any:
        from airflow_agentic.agents.monitoring import MonitoringState
        from airflow_agentic.data import io as dio

        decision = super().on_finish(context, run)
        self._watch.state = MonitoringState.from_dict((run.result or {}).get("state"))
        # The retraining the agent asks for runs in another DAG: not in flight for this step's memory.
        self._watch.state.in_flight = False
        paths = self._paths(self._name)
        self._watch = self._keeper.save(self._watch)
        report = {"decision": decision, "batch": self._name, "batch_number": self._signals["batch"],
                  "champion": self._champion,
                  "drift": {k: self._drift.get(k) for k in ("detected", "score", "max_effect", "drifted_columns")}}
        dio.write_json(report, paths["report"], conn_id=self.conn_id)
        latest = self._watch.records[-1] if self._watch.records else None
        context["ti"].xcom_push(key="accuracy", value=round(latest.accuracy, 4) if latest and
                                latest.batch == self._signals["batch"] and latest.accuracy is not None else None)
        return decision


class WatchKeeper:
    """Where a model's ``Watch`` lives between monitoring runs: an asset state store accessor (``store``, ``key``)
    or a JSON file (``path``). Stored as ``{"generation": n, "watch": {...}}``.

    A store has no compare-and-set, so two writers at once (two monitoring runs, a backfill) could each overwrite
    the other's batches. ``save`` re-reads first: when another writer saved since ``load``, the two watches are
    merged (``Watch.merged_with``: every scored batch kept) before writing generation n+1. The example DAG also
    allows one run at a time, which leaves only writers of other DAGs or backfills to merge."""

    def __init__(self, *, store: Any = None, key: str = "watch", path: str | None = None,
                 conn_id: str | None = None) -> None:
        if (store is None) == (path is None):
            raise ValueError("a watch is kept in a state store or in a file: give one of store and path")
        self.store, self.key, self.path, self.conn_id = store, key, path, conn_id
        self.generation = 0

    def _read(self) -> tuple[int, Any]:
        from airflow_agentic.data import io as dio
        from airflow_agentic.flywheel.monitor import Watch

        if self.store is not None:
            value = self.store.get(self.key)
        else:
            path = dio.resolve_path(self.path, self.conn_id)
            value = dio.read_json(path) if path.exists() else None
        if value is None:
            return 0, Watch()
        if not isinstance(value, dict):
            raise ValueError(f"the monitoring watch {self.where} is not a JSON object: {type(value).__name__}")
        if "generation" not in value:  # a watch file written before generations (the file is the bare watch)
            return 0, Watch.from_dict(value)
        return int(value["generation"]), Watch.from_dict(value.get("watch"))

    @property
    def where(self) -> str:
        return f"{self.key!r} in {self.store!r}" if self.store is not None else str(self.path)

    def load(self) -> Any:
        self.generation, watch = self._read()
        return watch

    def save(self, watch: Any) -> Any:
        """Write ``watch`` (merged with whatever another writer saved since ``load``) and return what was written."""
        from airflow_agentic.data import io as dio

        generation, current = self._read()
        if generation != self.generation:
            log.warning("the watch %s was saved by another run meanwhile (generation %s, read %s): merging",
                        self.where, generation, self.generation)
            watch = watch.merged_with(current)
        self.generation = generation + 1
        value = {"generation": self.generation, "watch": watch.to_dict()}
        if self.store is not None:
            self.store.set(self.key, value)
        else:
            dio.write_json(value, self.path, conn_id=self.conn_id)
        return watch
