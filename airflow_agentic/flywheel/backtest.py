"""The backtest: replay a scenario batch by batch through the flywheel (or a baseline policy), in-process.

Contract (docs/scenarios.md, checked by ``flywheel.scenario``): every row of batch i is predicted before batch i's labels are used; labels
of batch i become usable only after batch ``i + label_delay`` has been predicted (enforced by :class:`LabelVault`).
Writes ``predictions.parquet`` (batch, row_id, prediction; null where quarantined) and ``result.json``.

Policies: ``agentic`` (Data Steward + monitoring agent + gated retraining, the same turn functions the DAGs use),
``static`` (never retrain), ``periodic:K`` (retrain every K batches on the last window), ``at:B1,B2`` (retrain
right after the labels of those batches arrive, on the last window).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from airflow_agentic.agents.monitoring import MonitoringPolicy
from airflow_agentic.flywheel import turn as T
from airflow_agentic.flywheel.scenario import Scenario, parse_policy

if TYPE_CHECKING:
    import pandas as pd

    from airflow_agentic.agents.planner import Planner
    from airflow_agentic.flywheel.store import ModelStore

log = logging.getLogger(__name__)

WINDOW = 5
SENTINELS = (-999.0, -9999.0, 999999.0)


class LabelLeak(RuntimeError):
    """Labels were asked for before the contract allows it."""


class LabelVault:
    """Holds each batch's labels and releases them only after batch ``i + delay`` has been predicted."""

    def __init__(self, delay: int, warmup: int):
        self.delay = int(delay)
        self.warmup = int(warmup)
        self.labels: dict[int, np.ndarray] = {}
        self.predicted_through = warmup - 1
        self.log: list[tuple[int, int]] = []  # (batch released, last batch predicted at that moment)

    def deposit(self, batch: int, labels: np.ndarray) -> None:
        self.labels[batch] = np.asarray(labels)

    def mark_predicted(self, batch: int) -> None:
        if batch != self.predicted_through + 1:
            raise LabelLeak(f"batch {batch} predicted out of order (last was {self.predicted_through})")
        self.predicted_through = batch

    def release(self, batch: int) -> np.ndarray:
        if batch >= self.warmup and batch + self.delay > self.predicted_through:
            raise LabelLeak(f"labels of batch {batch} asked for after predicting only up to batch "
                            f"{self.predicted_through} (label_delay {self.delay})")
        self.log.append((batch, self.predicted_through))
        return self.labels.pop(batch)


@dataclass
class BacktestResult:
    scenario: str
    policy: str
    batches: list[dict[str, Any]]
    summary: dict[str, Any]
    predictions: pd.DataFrame | None = None
    label_log: list[tuple[int, int]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "policy": self.policy, "batches": self.batches, "summary": self.summary}

    def write(self, out: str | Path) -> Path:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        if self.predictions is not None:
            self.predictions.to_parquet(out / "predictions.parquet", index=False)
        (out / "result.json").write_text(json.dumps(self.to_dict(), indent=1, default=_json_default) + "\n")
        return out


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _prediction_frame(rows: list[tuple[int, np.ndarray, np.ndarray]], label_dtype: Any) -> pd.DataFrame:
    import pandas as pd

    batch = np.concatenate([np.full(len(ids), b, dtype="int64") for b, ids, _ in rows]) if rows else np.array([], "int64")
    ids = np.concatenate([np.asarray(ids, dtype="int64") for _, ids, _ in rows]) if rows else np.array([], "int64")
    values = np.concatenate([np.asarray(p, dtype=object) for _, _, p in rows]) if rows else np.array([], object)
    if np.issubdtype(np.dtype(label_dtype), np.integer) or np.dtype(label_dtype) == bool:
        pred = pd.array([None if v is None else int(v) for v in values], dtype="Int64")
    elif np.issubdtype(np.dtype(label_dtype), np.floating):
        pred = pd.array([None if v is None else float(v) for v in values], dtype="Float64")
    else:
        pred = pd.Series([None if v is None else str(v) for v in values], dtype=object)
    return pd.DataFrame({"batch": batch, "row_id": ids, "prediction": pred})


def _precleaned(frame: pd.DataFrame, id_column: str) -> pd.DataFrame:
    """Warm-up rows fit to build the steward's reference: no nulls, no listed sentinels, no duplicates."""
    cols = [c for c in frame.columns if c != id_column]
    keep = frame[cols].notna().all(axis=1)
    numeric = frame[cols].select_dtypes("number")
    if len(numeric.columns):
        keep &= ~numeric.isin(SENTINELS).any(axis=1)
    keep &= ~frame[cols].duplicated()
    return frame[keep]


def run_backtest(scenario_dir: str | Path, policy: str = "agentic", out: str | Path | None = None, *,
                 planner: Planner | None = None, monitoring: MonitoringPolicy | None = None, seed: int = 0,
                 llm_when: str = "interesting", max_llm_failures: int = 1, registry: str | None = None,
                 settings: T.TurnSettings | None = None) -> BacktestResult:
    """Run one scenario under one policy; write the outputs to ``out`` when given.

    ``registry``: an MLflow tracking URI (e.g. ``sqlite:///out/mlflow.db``) to keep the versions in a real model
    registry, exactly as the DAGs do; by default they are kept in memory (same turn, same decisions, faster)."""
    started = time.perf_counter()
    scen = Scenario.open(scenario_dir)
    kind, arg = parse_policy(policy, scen)
    with T.single_threaded():
        if kind == "agentic":
            store = None
            if registry:
                from airflow_agentic.flywheel.store import MlflowStore

                store = MlflowStore(f"backtest-{scen.name}", registry)
            result = _run_agentic(scen, policy, planner=planner, monitoring=monitoring or MonitoringPolicy(),
                                  seed=seed, llm_when=llm_when, max_llm_failures=max_llm_failures, store=store,
                                  settings=settings)
        else:
            result = _run_baseline(scen, policy, kind, arg, seed=seed)
    versions = [b["model_version"] for b in result.batches]
    result.summary.update(retrains=sum(1 for a, b in zip(versions, versions[1:]) if a != b),
                          wall_seconds=round(time.perf_counter() - started, 3))
    if out is not None:
        result.write(out)
    return result


# ---------------------------------------------------------------------------------------------- baselines
def _run_baseline(scen: Scenario, policy: str, kind: str, arg: Any, *, seed: int) -> BacktestResult:
    """What a user would do without the flywheel: predict every row, refit on the last window when the policy says."""
    import pandas as pd

    vault = LabelVault(scen.delay, scen.warmup)
    frames: dict[int, pd.DataFrame] = {}
    labels: dict[int, np.ndarray] = {}
    for b in range(scen.warmup):
        frame = scen.batch(b)
        vault.deposit(b, frame[scen.target].to_numpy())
        frames[b] = frame.drop(columns=[scen.target, scen.id_column])
        labels[b] = vault.release(b)
    label_dtype = labels[0].dtype

    family, params = T.DEFAULT_FAMILY, T.DEFAULT_PARAMS

    def fit(lo: int, hi: int) -> Any:
        batches = [b for b in range(lo, hi + 1) if b in labels]
        X = pd.concat([frames[b] for b in batches], ignore_index=True)
        return T.fit(X, np.concatenate([labels[b] for b in batches]), family, params, seed)

    model, version, n_versions = fit(0, scen.warmup - 1), "v1", 1
    rows, batches = [], []
    for i in range(scen.warmup, len(scen)):
        frame = scen.batch(i)
        vault.deposit(i, frame[scen.target].to_numpy())
        X = frame.drop(columns=[scen.target, scen.id_column])
        frames[i] = X
        rows.append((i, frame[scen.id_column].to_numpy(), T.predict(model, X)))
        vault.mark_predicted(i)
        entry = {"batch": i, "model_version": version, "actions": [], "drift": {"detected": False, "score": 0.0},
                 "quarantined": 0}
        labelled = i - scen.delay
        if labelled >= scen.warmup:
            labels[labelled] = vault.release(labelled)
        retrain = (kind == "periodic" and (i - scen.warmup + 1) % arg == 0) or (kind == "at" and labelled in arg)
        if retrain and labelled >= 0:
            model, n_versions = fit(max(0, labelled + 1 - WINDOW), labelled), n_versions + 1
            version = f"v{n_versions}"
            entry["actions"].append("retrain")
        batches.append(entry)
    return BacktestResult(scen.name, policy, batches, {"planner": "none", "llm_calls": 0},
                          _prediction_frame(rows, label_dtype), vault.log)


# ---------------------------------------------------------------------------------------------- agentic
def _run_agentic(scen: Scenario, policy: str, *, planner: Planner | None, monitoring: MonitoringPolicy, seed: int,
                 llm_when: str, max_llm_failures: int, store: ModelStore | None = None,
                 settings: T.TurnSettings | None = None) -> BacktestResult:
    import pandas as pd

    from airflow_agentic.data.pipeline import steward_features, steward_profile
    from airflow_agentic.flywheel.monitor import Watch, drift_check
    from airflow_agentic.flywheel.store import MemoryStore

    tgt, idc, warm, delay = scen.target, scen.id_column, scen.warmup, scen.delay
    settings = settings or T.TurnSettings(seed=seed)
    store = store or MemoryStore()
    vault = LabelVault(delay, warm)
    data: dict[int, T.LabelledBatch] = {}  # labelled clean rows per batch

    # Warm-up: the steward's reference from rows that look sane, then the steward on the warm-up batches themselves.
    warm_frames = [scen.batch(b) for b in range(warm)]
    label_dtype = warm_frames[0][tgt].to_numpy().dtype
    features0 = pd.concat([f.drop(columns=[tgt]) for f in warm_frames], ignore_index=True)
    s_profile = steward_profile(_precleaned(features0, idc), idc)
    for b, frame in enumerate(warm_frames):
        vault.deposit(b, frame[tgt].to_numpy())
        y = vault.release(b)
        outcome = steward_features(frame.drop(columns=[tgt]), s_profile, id_column=idc)
        data[b] = T.LabelledBatch(frame.drop(columns=[tgt, idc])[outcome.clean].reset_index(drop=True),
                                  y[outcome.clean])
    first = T.first_champion(data, store, settings, run_key=f"{scen.name}-initial")
    if first.status != "initial":
        raise RuntimeError(f"no first model for {scen.name}: {first.verdict}")
    watch = Watch()
    clean_masks: dict[int, np.ndarray] = {}
    pending_X: dict[int, pd.DataFrame] = {}
    rows, batches = [], []
    llm_calls, llm_failures, active_planner = 0, 0, planner
    alerts: list[dict] = []
    counters = {"retrain_requests": 0, "gate_rejections": 0, "rollbacks": 0, "reuses": 0, "alerts": 0,
                "steward_handoffs": 0}

    for i in range(warm, len(scen)):
        champion = store.champion()
        earlier = store.earlier()
        frame = scen.batch(i)
        vault.deposit(i, frame[tgt].to_numpy())
        features = frame.drop(columns=[tgt])
        ids = features[idc].to_numpy()
        steward = steward_features(features, s_profile, id_column=idc)
        clean = steward.clean
        Xc = features.drop(columns=[idc])[clean].reset_index(drop=True)
        preds = watch.score(i, Xc, ids[clean], champion, earlier)
        full = np.full(len(features), None, dtype=object)
        full[clean] = preds
        rows.append((i, ids, full))
        vault.mark_predicted(i)
        clean_masks[i], pending_X[i] = clean, Xc

        j = i - delay
        if j >= warm:
            y = vault.release(j)[clean_masks[j]]
            data[j] = T.LabelledBatch(pending_X.pop(j), y)
            watch.label(j, y)

        drift = drift_check(champion.profile, Xc, preds)
        signals = watch.signals(batch=i, drift=drift, quality=steward.quality(), champion=champion,
                                labelled_upto=j, policy=monitoring)
        turn = T.monitoring_turn(signals, state=watch.state, policy=monitoring, planner=active_planner,
                                 callbacks={"alert": alerts.append}, llm_when=llm_when)
        llm_calls += turn.llm_calls
        if turn.fallback:
            llm_failures += 1
            if active_planner is not None and llm_failures >= max_llm_failures:
                log.warning("LLM planner failed %d time(s) (%s): rules for the rest of the backtest",
                            llm_failures, turn.fallback)
                active_planner = None
        decision = turn.decision
        actions = [a for a in decision.actions if a != "ignore"]
        counters["alerts"] += "alert" in actions
        counters["steward_handoffs"] += "send_to_data_steward" in actions
        entry: dict[str, Any] = {
            "batch": i, "model_version": champion.version, "actions": actions,
            "drift": {"detected": bool(drift.get("detected")), "score": float(drift.get("score") or 0.0)},
            "quarantined": steward.quarantined,
            "decision": decision.action, "planner": decision.planner,
            "performance": {k: signals["performance"].get(k) for k in ("latest_batch", "latest_accuracy", "z_drop",
                                                                       "drop", "change_point")},
            "estimation": {k: v for k, v in (signals.get("estimation") or {}).items() if k != "realised_accuracy"},
        }
        if decision.rollback_to:
            if store.get(decision.rollback_to) is not None and decision.rollback_to != champion.version:
                store.rollback(decision.rollback_to, reason="; ".join(decision.reasons))
                watch.acknowledge()
                counters["rollbacks"] += 1
                entry["actions"].append("rolled_back")
        elif decision.retrain and j >= 0:
            counters["retrain_requests"] += 1
            outcome = T.learn(decision.retrain, data, store, settings, labelled_upto=j,
                              run_key=f"{scen.name}-{i}")
            entry["retrain"] = outcome.verdict
            if outcome.status == "reused":
                counters["reuses"] += 1
                entry["actions"].append("reused")
                watch.acknowledge()
            elif outcome.status == "promoted":
                entry["actions"].append("promoted")
                watch.acknowledge()
            else:
                counters["gate_rejections"] += 1
                entry["actions"].append("gate_rejected")
        watch.state.in_flight = False
        batches.append(entry)

    # The output records which model served each batch; the new champion serves from the next batch on.
    planner_name = "rule" if planner is None else f"llm:{getattr(getattr(planner, 'settings', None), 'model', '?')}"
    summary = {"planner": planner_name, "llm_calls": llm_calls, "llm_failures": llm_failures, **counters,
               "final_version": store.champion().version}
    return BacktestResult(scen.name, policy, batches, summary, _prediction_frame(rows, label_dtype), vault.log)
