"""The backtest: replay a scenario batch by batch through the flywheel (or a baseline policy), in-process.

Contract (../shared/scenarios/README.md): every row of batch i is predicted before batch i's labels are used; labels
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

from airflow_agentic.agents.monitoring import MonitoringPolicy, MonitoringState
from airflow_agentic.flywheel import turn as T

if TYPE_CHECKING:
    import pandas as pd

    from airflow_agentic.agents.planner import Planner

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
class Scenario:
    folder: Path
    meta: dict[str, Any]
    files: list[Path]

    @classmethod
    def open(cls, folder: str | Path) -> Scenario:
        folder = Path(folder)
        meta = json.loads((folder / "scenario.json").read_text())
        files = sorted((folder / "batches").glob("*.parquet"))
        if not files:
            raise FileNotFoundError(f"no batches in {folder / 'batches'}")
        return cls(folder, meta, files)

    @property
    def name(self) -> str:
        return str(self.meta.get("name") or self.folder.name)

    @property
    def target(self) -> str:
        return str(self.meta.get("target", "label"))

    @property
    def id_column(self) -> str:
        return str(self.meta.get("id_column", "row_id"))

    @property
    def warmup(self) -> int:
        return int(self.meta.get("warmup_batches", 5))

    @property
    def delay(self) -> int:
        return int(self.meta.get("label_delay", 0))

    def __len__(self) -> int:
        return len(self.files)

    def batch(self, i: int) -> pd.DataFrame:
        import pandas as pd

        return pd.read_parquet(self.files[i])


def parse_policy(policy: str) -> tuple[str, Any]:
    policy = policy.strip()
    if policy in ("agentic", "static"):
        return policy, None
    kind, _, arg = policy.partition(":")
    if kind == "periodic":
        k = int(arg)
        if k < 1:
            raise ValueError("periodic:K needs K >= 1")
        return kind, k
    if kind == "at":
        return kind, sorted({int(b) for b in arg.split(",") if b.strip()})
    raise ValueError(f"unknown policy {policy!r}: agentic, static, periodic:K or at:B1,B2,...")


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
                 llm_when: str = "interesting", max_llm_failures: int = 1) -> BacktestResult:
    """Run one scenario under one policy; write the outputs to ``out`` when given."""
    started = time.perf_counter()
    scen = Scenario.open(scenario_dir)
    kind, arg = parse_policy(policy)
    with T.single_threaded():
        if kind == "agentic":
            result = _run_agentic(scen, policy, planner=planner, monitoring=monitoring or MonitoringPolicy(),
                                  seed=seed, llm_when=llm_when, max_llm_failures=max_llm_failures)
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
    schema = _schema(frames[0])

    def fit(lo: int, hi: int) -> Any:
        batches = [b for b in range(lo, hi + 1) if b in labels]
        X = pd.concat([frames[b] for b in batches], ignore_index=True)
        return T.fit_model(X, np.concatenate([labels[b] for b in batches]), schema=schema, seed=seed)

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


def _schema(X: pd.DataFrame) -> Any:
    try:
        from airflow_agentic.models.dataset import infer_schema
    except ImportError:
        return None
    return infer_schema(X)


# ---------------------------------------------------------------------------------------------- agentic
def _run_agentic(scen: Scenario, policy: str, *, planner: Planner | None, monitoring: MonitoringPolicy, seed: int,
                 llm_when: str, max_llm_failures: int) -> BacktestResult:
    import pandas as pd

    from airflow_agentic.drift.performance import PerformanceMonitor

    tgt, idc, warm, delay = scen.target, scen.id_column, scen.warmup, scen.delay
    vault = LabelVault(delay, warm)
    data: dict[int, tuple[pd.DataFrame, np.ndarray]] = {}  # labelled clean rows per batch

    # Warm-up: the steward's reference from rows that look sane, then the steward on the warm-up batches themselves.
    warm_frames = [scen.batch(b) for b in range(warm)]
    label_dtype = warm_frames[0][tgt].to_numpy().dtype
    features0 = pd.concat([f.drop(columns=[tgt]) for f in warm_frames], ignore_index=True)
    s_profile = T.steward_profile(_precleaned(features0, idc), idc)
    for b, frame in enumerate(warm_frames):
        vault.deposit(b, frame[tgt].to_numpy())
        y = vault.release(b)
        outcome = T.steward_rows(frame.drop(columns=[tgt]), s_profile, id_column=idc)
        data[b] = (frame.drop(columns=[tgt, idc])[outcome.clean].reset_index(drop=True), y[outcome.clean])
    schema = _schema(data[0][0])

    def fit_on(batches: list[int]) -> tuple[Any, pd.DataFrame]:
        X = pd.concat([data[b][0] for b in batches], ignore_index=True)
        y = np.concatenate([data[b][1] for b in batches])
        return T.fit_model(X, y, schema=schema, seed=seed), X

    expected: dict[str, Any] = {}
    if warm >= 2:
        probe, _ = fit_on(list(range(warm - 1)))
        Xh, yh = data[warm - 1]
        expected = {"accuracy": float(np.mean(T.predict(probe, Xh) == yh)), "rows": int(len(yh))}
    model, X0 = fit_on(list(range(warm)))
    champion = T.ModelEntry("v1", model, list(range(warm)), kind="initial", expected=expected,
                            profile=T.drift_profile(X0, model))
    pool: list[T.ModelEntry] = []
    n_versions = 1
    state = MonitoringState()
    monitor = PerformanceMonitor()
    records = []
    served: dict[int, dict[str, np.ndarray]] = {}  # batch -> {version: predictions on clean rows}
    serving_version: dict[int, str] = {}
    clean_masks: dict[int, np.ndarray] = {}
    pending_X: dict[int, pd.DataFrame] = {}
    rows, batches = [], []
    llm_calls, llm_failures, active_planner = 0, 0, planner
    alerts: list[dict] = []
    counters = {"retrain_requests": 0, "gate_rejections": 0, "rollbacks": 0, "reuses": 0, "alerts": 0,
                "steward_handoffs": 0}

    def switch(new: T.ModelEntry) -> None:
        nonlocal champion, pool
        pool = [champion, *[e for e in pool if e.version not in (champion.version, new.version)]][:4]
        champion = new
        monitor.acknowledge()

    for i in range(warm, len(scen)):
        frame = scen.batch(i)
        vault.deposit(i, frame[tgt].to_numpy())
        features = frame.drop(columns=[tgt])
        ids = features[idc].to_numpy()
        steward = T.steward_rows(features, s_profile, id_column=idc)
        clean = steward.clean
        Xc = features.drop(columns=[idc])[clean].reset_index(drop=True)
        preds = T.predict(champion.model, Xc)
        full = np.full(len(features), None, dtype=object)
        full[clean] = preds
        rows.append((i, ids, full))
        vault.mark_predicted(i)
        served[i] = {champion.version: preds, **{e.version: T.predict(e.model, Xc) for e in pool}}
        serving_version[i] = champion.version
        clean_masks[i], pending_X[i] = clean, Xc
        monitor.add_predictions(str(i), ids[clean], preds)

        j = i - delay
        if j >= warm:
            y = vault.release(j)[clean_masks[j]]
            data[j] = (pending_X.pop(j), y)
            records.append(T.score_batch(j, serving_version[j], y, served.pop(j)))
            monitor.add_labels(ids_of(rows, j, clean_masks[j]), y)

        drift = T.drift_check(champion.profile, Xc, preds)
        signals = T.build_signals(
            batch=i, drift=drift, quality=steward.quality(),
            performance=T.evidence_for(records, champion, monitoring), monitor_report=_short_report(monitor),
            retraining={"kind": champion.kind, "change_point": champion.change_point,
                        "trained_until": max(champion.trained_on) if champion.trained_on else None,
                        "labelled_upto": j})
        turn = T.monitoring_turn(signals, state=state, policy=monitoring, planner=active_planner,
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
        }
        if decision.rollback_to:
            target = next((e for e in pool if e.version == decision.rollback_to), None)
            if target is not None and target.version != champion.version:
                switch(T.ModelEntry(target.version, target.model, target.trained_on, kind="rollback",
                                    expected=target.expected, profile=target.profile))
                counters["rollbacks"] += 1
                entry["actions"].append("rolled_back")
        elif decision.retrain and j >= 0:
            counters["retrain_requests"] += 1
            outcome = T.retrain_turn(decision.retrain, data=data, labelled_upto=j, champion=champion, pool=pool,
                                     new_version=f"v{n_versions + 1}", window=WINDOW, seed=seed, schema=schema)
            entry["retrain"] = outcome.verdict
            if outcome.promoted is not None:
                if outcome.promoted.kind == "reuse":
                    counters["reuses"] += 1
                    entry["actions"].append("reused")
                else:
                    n_versions += 1
                    entry["actions"].append("promoted")
                switch(outcome.promoted)
            else:
                counters["gate_rejections"] += 1
                entry["actions"].append("gate_rejected")
        state.in_flight = False
        batches.append(entry)

    # The output records which model served each batch; the new champion serves from the next batch on.
    planner_name = "rule" if planner is None else f"llm:{getattr(getattr(planner, 'settings', None), 'model', '?')}"
    summary = {"planner": planner_name, "llm_calls": llm_calls, "llm_failures": llm_failures, **counters,
               "final_version": champion.version}
    return BacktestResult(scen.name, policy, batches, summary, _prediction_frame(rows, label_dtype), vault.log)


def ids_of(rows: list[tuple[int, np.ndarray, np.ndarray]], batch: int, clean: np.ndarray) -> np.ndarray:
    for b, ids, _ in reversed(rows):
        if b == batch:
            return np.asarray(ids)[clean]
    raise KeyError(batch)


def _short_report(monitor: Any) -> dict[str, Any]:
    report = monitor.report()
    report.pop("per_batch", None)
    return report
