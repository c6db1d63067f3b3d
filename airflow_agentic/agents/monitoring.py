"""The Monitoring & Adaptation agent: reads drift, data-quality and delayed-label performance signals and decides
to ignore, alert, send the batch to the Data Steward, request retraining or request a rollback.

No Airflow here. The evidence is computed by pure functions (:func:`performance_evidence`, :func:`build_signals`)
so that the backtest and the Airflow operators feed the agent the same observation. The outside world is reached
only through callbacks (``on_alert``, ``on_retrain``, ``on_rollback``, ``on_steward``): in Airflow ``on_retrain``
emits the drift Asset event; in the backtest it queues a retraining turn.

What the rule policy tells apart:

- covariate shift that does not hurt accuracy: features drift, performance holds -> ``alert`` (never retrain);
- a corrupted batch: many quarantined rows -> ``send_to_data_steward``; performance is scored on clean rows only,
  so the corruption itself can never look like a performance drop;
- concept drift or a performance drop: a one-sided two-proportion test of the champion's recent accuracy against
  its own earlier accuracy (ADWIN on the error stream lowers the bar) -> ``request_retraining`` with the estimated
  change point, so that the retraining uses data since the change only;
- a new model worse than the one before on the same labelled rows (paired McNemar test) -> ``request_rollback``.

Cool-down: no new retraining request while one is in flight or within ``cooldown_batches`` of the last one, unless
the drop got worse by ``worse_margin``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np

from airflow_agentic.agents.decision import Decision, PlanningContext, finish
from airflow_agentic.agents.loop import Agent
from airflow_agentic.agents.tools import Risk, Toolset, tool

ACTIONS = ("ignore", "alert", "send_to_data_steward", "request_retraining", "request_rollback")
# When several tools ran in one turn, the decision is named after the most consequential one.
_PRIORITY = {name: rank for rank, name in enumerate(ACTIONS)}


@dataclass
class MonitoringPolicy:
    """Thresholds of the rule policy. Defaults keep false retrains rare over hundreds of batches of 1,000 rows."""

    z_drop: float = 3.5  # one-sided z of recent vs reference accuracy needed for a retrain
    z_drop_with_adwin: float = 2.5  # ... when ADWIN also saw a change in the error stream
    min_drop: float = 0.02  # and the drop must matter (absolute accuracy)
    max_window: int = 3  # recent windows of 1..max_window labelled batches are tested
    reference_batches: int = 8  # the champion's first labelled batches form its reference
    z_change_point: float = 2.0  # per-batch z that marks a batch as "after the change"
    corrupted_share: float = 0.02  # quarantined share above which a batch counts as corrupted
    cooldown_batches: int = 3
    worse_margin: float = 0.05
    refit_window: int = 5  # refit once this many batches of post-change data exist
    z_rollback: float = 2.5
    min_rollback_gain: float = 0.01
    min_rollback_rows: int = 300
    alert_every: int = 5  # batches between two alerts about the same feature drift
    # Label-prior shift: the labels' class shares moved away from the champion's training shares (total variation
    # distance) beyond chance (chi-squared p). Accuracy can hold while a model fitted to the new shares does better.
    label_shift_tvd: float = 0.1
    label_shift_p: float = 1e-6
    # Gradual drift: this many drift retrainings within `gradual_horizon` batches say the concept keeps moving. Then a
    # refit after a fast retraining is skipped (the next drop brings a retraining on fresh data anyway) and drift
    # retrainings keep `gradual_cooldown` batches apart unless the drop is severe: fewer, better-timed retrainings.
    gradual_after: int = 2
    gradual_horizon: int = 25
    gradual_cooldown: int = 8
    severe_drop: float = 0.15
    # Before labels: the champion's accuracy estimated from its calibrated probabilities (CBPE, corrected for label
    # shift). A significant estimated drop while the batch's labels are still out raises an alert with the numbers.
    estimate_p: float = 0.01
    min_prior_gain: float = 0.01  # estimated accuracy a prior correction must gain to be asked for

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> MonitoringPolicy:
        data = data or {}
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class BatchPerformance:
    """Clean labelled rows of one batch as scored for the model that predicted it, plus shadow models' scores on the
    same rows (``shadow[version] = {"correct", "only_self", "only_other"}``; only_self = this model right and the
    shadow wrong)."""

    batch: int
    version: str
    rows: int
    correct: int
    shadow: dict[str, dict[str, int]] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)  # class -> count among the labelled rows

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.rows if self.rows else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BatchPerformance:
        return cls(batch=int(data["batch"]), version=str(data["version"]), rows=int(data["rows"]),
                   correct=int(data["correct"]), shadow={k: dict(v) for k, v in (data.get("shadow") or {}).items()},
                   labels={str(k): int(v) for k, v in (data.get("labels") or {}).items()})


def _z_drop(ref_correct: int, ref_rows: int, cur_correct: int, cur_rows: int) -> float:
    """One-sided two-proportion z: positive when the current accuracy is below the reference."""
    if ref_rows <= 0 or cur_rows <= 0:
        return 0.0
    p1, p2 = ref_correct / ref_rows, cur_correct / cur_rows
    pooled = (ref_correct + cur_correct) / (ref_rows + cur_rows)
    var = pooled * (1 - pooled) * (1 / ref_rows + 1 / cur_rows)
    if var <= 0:
        return 0.0 if p1 == p2 else math.copysign(10.0, p1 - p2)
    return (p1 - p2) / math.sqrt(var)


def label_shift_evidence(records: list[BatchPerformance], priors: dict[str, float] | None,
                         policy: MonitoringPolicy | None = None) -> dict[str, Any] | None:
    """Have the labels' class shares moved away from ``priors`` (the champion's training shares)? The most
    significant of the recent windows (1..``max_window`` batches) by a chi-squared goodness-of-fit test, its total
    variation distance, and the first batch of the trailing run whose shares moved on their own."""
    from scipy.stats import chi2

    policy = policy or MonitoringPolicy()
    own = [r for r in records if r.labels]
    if not priors or not own:
        return None
    classes = sorted(set(priors) | {c for r in own for c in r.labels})
    expected = np.array([max(float(priors.get(c, 0.0)), 1e-3) for c in classes])
    expected = expected / expected.sum()

    def test(window: list[BatchPerformance]) -> tuple[float, float, np.ndarray]:
        counts = np.array([sum(r.labels.get(c, 0) for r in window) for c in classes], dtype=float)
        n = counts.sum()
        shares = counts / n
        statistic = float(n * np.sum((shares - expected) ** 2 / expected))
        return float(chi2.sf(statistic, df=max(len(classes) - 1, 1))), 0.5 * float(np.abs(shares - expected).sum()), \
            shares

    best = None
    for w in range(1, min(policy.max_window, len(own)) + 1):
        p, tvd, shares = test(own[-w:])
        if best is None or (p, -tvd) < (best[0], -best[1]):
            best = (p, tvd, shares, w)
    p, tvd, shares, w = best
    since = own[-1].batch
    for r in reversed(own):
        if test([r])[1] >= policy.label_shift_tvd / 2:
            since = r.batch
        else:
            break
    return {"p": p, "tvd": round(tvd, 4), "window": w, "since": since,
            "recent": {c: round(float(v), 4) for c, v in zip(classes, shares)},
            "reference": {c: round(float(v), 4) for c, v in zip(classes, expected)}}


def performance_evidence(records: list[BatchPerformance], champion: str, *, previous: str | None = None,
                         expected: dict[str, Any] | None = None,
                         policy: MonitoringPolicy | None = None) -> dict[str, Any]:
    """Evidence of a performance drop of ``champion`` from its own labelled batches, and of it being worse than
    ``previous`` on the same rows. ``expected`` ({"accuracy", "rows"}) is the training-time holdout estimate, used
    as the reference until the champion has labelled batches of its own."""
    policy = policy or MonitoringPolicy()
    own = [r for r in records if r.version == champion and r.rows > 0]
    out: dict[str, Any] = {"champion": champion, "labelled_batches": len(own),
                           "labelled_rows": int(sum(r.rows for r in own)), "z_drop": 0.0, "drop": 0.0,
                           "window": None, "reference_accuracy": None, "recent_accuracy": None,
                           "change_point": None, "latest_batch": own[-1].batch if own else None,
                           "latest_accuracy": own[-1].accuracy if own else None}
    best: tuple[float, float, int, int, int, int, int] | None = None
    for w in range(1, policy.max_window + 1):
        if not own:
            break
        recent = own[-w:] if len(own) >= w else None
        if recent is None:
            break
        reference = own[:-w][: policy.reference_batches]
        if reference:
            ref_c, ref_n = sum(r.correct for r in reference), sum(r.rows for r in reference)
        elif expected and expected.get("rows"):
            ref_n = int(expected["rows"])
            ref_c = int(round(float(expected["accuracy"]) * ref_n))
        else:
            continue
        cur_c, cur_n = sum(r.correct for r in recent), sum(r.rows for r in recent)
        z = _z_drop(ref_c, ref_n, cur_c, cur_n)
        if best is None or z > best[0]:
            best = (z, ref_c / ref_n - cur_c / cur_n, w, ref_c, ref_n, cur_c, cur_n)
    if best is not None:
        z, drop, w, ref_c, ref_n, cur_c, cur_n = best
        out.update(z_drop=round(z, 3), drop=round(drop, 4), window=w, reference_accuracy=round(ref_c / ref_n, 4),
                   recent_accuracy=round(cur_c / cur_n, 4),
                   latest_drop=round(ref_c / ref_n - own[-1].accuracy, 4))
        # Change point: the earliest batch of the trailing run that is each on its own below the reference.
        change = None
        for r in reversed(own):
            if _z_drop(ref_c, ref_n, r.correct, r.rows) >= policy.z_change_point:
                change = r.batch
            else:
                break
        out["change_point"] = change if change is not None else own[-1].batch
    out["label_shift"] = label_shift_evidence(own, (expected or {}).get("priors"), policy)
    out["previous"] = None
    if previous:
        rows = self_only = other_only = correct_self = correct_other = 0
        for r in own:
            s = r.shadow.get(previous)
            if not s:
                continue
            rows += r.rows
            correct_self += r.correct
            correct_other += int(s["correct"])
            self_only += int(s["only_self"])
            other_only += int(s["only_other"])
        discordant = self_only + other_only
        z = (other_only - self_only) / math.sqrt(discordant) if discordant else 0.0
        out["previous"] = {"version": previous, "rows": rows,
                           "accuracy": round(correct_self / rows, 4) if rows else None,
                           "previous_accuracy": round(correct_other / rows, 4) if rows else None,
                           "z_worse": round(z, 3)}
    return out


def build_signals(*, batch: int, drift: dict[str, Any] | None, quality: dict[str, Any] | None,
                  performance: dict[str, Any], monitor_report: dict[str, Any] | None = None,
                  retraining: dict[str, Any] | None = None) -> dict[str, Any]:
    """The monitoring agent's observation, JSON-ready and small (it goes into LLM prompts and traces)."""
    drift = drift or {}
    quality = quality or {}
    monitor_report = monitor_report or {}
    prediction = drift.get("prediction") or {}
    return {
        "batch": int(batch),
        "drift": {"detected": bool(drift.get("detected")), "score": float(drift.get("score") or 0.0),
                  "drifted_columns": list(drift.get("drifted_columns") or [])[:20],
                  "max_effect": drift.get("max_effect"),
                  "prediction_drifted": bool(prediction.get("drifted")) if prediction else None},
        "quality": {"rows": int(quality.get("rows", 0)), "quarantined": int(quality.get("quarantined", 0)),
                    "quarantined_share": float(quality.get("quarantined_share", 0.0)),
                    "by_reason": dict(quality.get("by_reason") or {}),
                    "schema_broken": bool(quality.get("schema_broken", False))},
        "performance": performance,
        "adwin": {"change_detected": bool(monitor_report.get("change_detected")),
                  "window_accuracy": monitor_report.get("window_accuracy"),
                  "baseline_accuracy": monitor_report.get("baseline_accuracy")},
        "retraining": dict(retraining or {}),
    }


@dataclass
class MonitoringState:
    """What the agent remembers between batches (JSON through to_dict/from_dict, e.g. in an Airflow Variable)."""

    in_flight: bool = False
    last_request_batch: int | None = None
    last_request_drop: float = 0.0
    last_alert_batch: int | None = None
    last_alert_columns: list[str] = field(default_factory=list)
    refit_requested_for: str | None = None  # champion version whose refit was already asked for
    drift_requests: list[int] = field(default_factory=list)  # batches of the recent drift retraining requests
    label_shift_requested_for: str | None = None  # champion version a label-shift retraining was asked for

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> MonitoringState:
        data = data or {}
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class MonitoringDecision:
    """The monitoring agent's decision for one batch: the main action, every tool that ran, why, and on what."""

    action: str
    reasons: list[str]
    signals: dict[str, Any]
    actions: list[str] = field(default_factory=list)
    batch: int | None = None
    retrain: dict[str, Any] | None = None  # {"kind": "drift" | "refit", "since_batch", "reason"}
    rollback_to: str | None = None
    planner: str = "rule"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MonitoringDecision:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def _noop(payload: dict[str, Any]) -> Any:
    return None


class MonitoringAgent(Agent):
    name = "monitoring"
    default_goal = ("Keep the champion model accurate at the lowest cost: retrain only on evidence of a performance "
                    "drop on delayed labels, never on feature drift alone or on a corrupted batch; send corrupted "
                    "batches to the Data Steward; roll back a new model that is worse than the previous one.")

    def __init__(self, signals: dict[str, Any], *, policy: MonitoringPolicy | None = None,
                 state: MonitoringState | None = None, on_alert: Callable[[dict], Any] | None = None,
                 on_retrain: Callable[[dict], Any] | None = None, on_rollback: Callable[[dict], Any] | None = None,
                 on_steward: Callable[[dict], Any] | None = None):
        self.signals = signals
        self.policy = policy or MonitoringPolicy()
        self.state = state or MonitoringState()
        self.on_alert = on_alert or _noop
        self.on_retrain = on_retrain or _noop
        self.on_rollback = on_rollback or _noop
        self.on_steward = on_steward or _noop
        self.taken: list[tuple[str, dict[str, Any], str]] = []  # (tool, arguments, reason)
        self.retrain: dict[str, Any] | None = None
        self.rollback_to: str | None = None

    # ------------------------------------------------------------------ tools
    def toolset(self) -> Toolset:
        @tool(risk=Risk.READ)
        def ignore(reason: str = "") -> dict:
            """Nothing to do for this batch."""
            self.taken.append(("ignore", {}, reason))
            return {"ignored": True}

        @tool(risk=Risk.WRITE, side_effects=True)
        def alert(message: str, severity: str = "warning") -> dict:
            """Tell people (e.g. feature drift that does not hurt accuracy); changes nothing in the pipeline."""
            payload = {"message": message, "severity": severity, "batch": self.signals.get("batch"),
                       "drifted_columns": self.signals.get("drift", {}).get("drifted_columns", [])}
            self.on_alert(payload)
            self.state.last_alert_batch = self.signals.get("batch")
            self.state.last_alert_columns = list(payload["drifted_columns"])
            self.taken.append(("alert", {"message": message, "severity": severity}, message))
            return {"alerted": True}

        @tool(risk=Risk.WRITE, side_effects=True)
        def send_to_data_steward(reason: str) -> dict:
            """Hand a corrupted batch to the Data Steward; its quarantined rows are never used for training."""
            payload = {"batch": self.signals.get("batch"), "reason": reason, "quality": self.signals.get("quality")}
            self.on_steward(payload)
            self.taken.append(("send_to_data_steward", {"reason": reason}, reason))
            return {"sent": True}

        @tool(risk=Risk.WRITE, side_effects=True)
        def request_retraining(reason: str, since_batch: int | None = None, kind: str = "drift") -> dict:
            """Ask Continuous Learning for a challenger trained on data since `since_batch` (the change point);
            kind is "drift" (after a performance drop), "refit" (a full window of post-change data exists) or
            "prior" (re-weight the champion's classes to the priors estimated on this batch, before labels)."""
            if kind not in ("drift", "refit", "prior"):
                raise ValueError(f"kind must be 'drift', 'refit' or 'prior', not {kind!r}")
            request = {"kind": kind, "since_batch": since_batch, "reason": reason,
                       "batch": self.signals.get("batch"),
                       "champion": self.signals.get("performance", {}).get("champion")}
            if kind == "prior":
                request["estimate"] = self.signals.get("estimation")
            answer = self.on_retrain(request)
            self.retrain = request
            self.state.in_flight = True
            self.state.last_request_batch = self.signals.get("batch")
            perf = self.signals.get("performance", {})
            self.state.last_request_drop = float(perf.get("latest_drop") or perf.get("drop") or 0.0)
            if kind == "refit":
                self.state.refit_requested_for = request["champion"]
            elif self.signals.get("batch") is not None:
                self.state.drift_requests = [*self.state.drift_requests, int(self.signals["batch"])][-10:]
            self.taken.append(("request_retraining", request, reason))
            return {"requested": True, **({"answer": answer} if isinstance(answer, dict) else {})}

        @tool(risk=Risk.WRITE, side_effects=True)
        def request_rollback(reason: str, to_version: str | None = None) -> dict:
            """Ask Deployment to put the previous champion back (the newest model is worse on the same data)."""
            previous = (self.signals.get("performance", {}).get("previous") or {}).get("version")
            target = to_version or previous
            if not target:
                raise ValueError("there is no previous version to roll back to")
            payload = {"to_version": target, "reason": reason, "batch": self.signals.get("batch")}
            self.on_rollback(payload)
            self.rollback_to = target
            self.taken.append(("request_rollback", payload, reason))
            return {"requested": True, "to_version": target}

        return Toolset.of([ignore, alert, send_to_data_steward, request_retraining, request_rollback])

    def observe(self) -> dict[str, Any]:
        return {**self.signals, "state": self.state.to_dict(), "policy": self.policy.to_dict()}

    # ------------------------------------------------------------------ policy
    def assess(self) -> list[tuple[str, dict[str, Any], str]]:
        """Every action the evidence calls for, most urgent first, as (tool, arguments, reason)."""
        p, s = self.policy, self.signals
        quality, drift = s.get("quality", {}), s.get("drift", {})
        perf, adwin, training = s.get("performance", {}), s.get("adwin", {}), s.get("retraining", {})
        batch = s.get("batch")
        plan: list[tuple[str, dict[str, Any], str]] = []

        corrupted = quality.get("schema_broken") or quality.get("quarantined_share", 0.0) > p.corrupted_share
        if corrupted:
            why = (f"corrupted batch: {quality.get('quarantined', 0)} of {quality.get('rows', 0)} rows quarantined "
                   f"({dict(quality.get('by_reason') or {})}); they are kept out of training and scoring")
            plan.append(("send_to_data_steward", {"reason": why}, why))

        prev = perf.get("previous") or {}
        if prev.get("rows", 0) >= p.min_rollback_rows and prev.get("z_worse", 0.0) >= p.z_rollback and \
                (prev.get("previous_accuracy") or 0.0) - (prev.get("accuracy") or 0.0) >= p.min_rollback_gain:
            why = (f"champion {perf.get('champion')} is worse than {prev['version']} on the same {prev['rows']} rows "
                   f"({prev['accuracy']:.3f} vs {prev['previous_accuracy']:.3f}, McNemar z={prev['z_worse']:.1f})")
            plan.append(("request_rollback", {"reason": why, "to_version": prev["version"]}, why))
            return plan

        z, drop = float(perf.get("z_drop") or 0.0), float(perf.get("drop") or 0.0)
        threshold = p.z_drop_with_adwin if adwin.get("change_detected") else p.z_drop
        significant = z >= threshold and drop >= p.min_drop
        recent_drifts = [b for b in self.state.drift_requests if batch is not None and batch - b <= p.gradual_horizon]
        gradual = len(recent_drifts) >= p.gradual_after
        since_last = None if self.state.last_request_batch is None or batch is None else \
            batch - self.state.last_request_batch
        latest_drop = float(perf.get("latest_drop") or drop)
        # Under gradual drift retrainings keep `gradual_cooldown` apart, unless the drop is severe.
        cooling = self.state.in_flight or (since_last is not None and (
            since_last < p.cooldown_batches or
            (gradual and since_last < p.gradual_cooldown and latest_drop < p.severe_drop)))
        if significant:
            worse = latest_drop >= self.state.last_request_drop + p.worse_margin
            if not cooling or worse:
                why = (f"performance drop on delayed labels: accuracy {perf.get('recent_accuracy')} vs reference "
                       f"{perf.get('reference_accuracy')} (drop {drop:.3f}, z={z:.1f}"
                       f"{', ADWIN change' if adwin.get('change_detected') else ''}); change point at batch "
                       f"{perf.get('change_point')}")
                plan.append(("request_retraining", {"reason": why, "since_batch": perf.get("change_point"),
                                                    "kind": "drift"}, why))
                return plan
            gradual_note = f" (gradual drift: {len(recent_drifts)} drift retrainings in {p.gradual_horizon} " \
                f"batches)" if gradual else ""
            why = f"drop (z={z:.1f}) but a retraining was requested {since_last} batch(es) ago: cooling down" \
                  f"{gradual_note}"
            plan.append(("ignore", {"reason": why}, why))
            return plan

        shift = perf.get("label_shift") or {}
        if shift and shift["p"] < p.label_shift_p and shift["tvd"] >= p.label_shift_tvd and not cooling and \
                self.state.label_shift_requested_for != perf.get("champion"):
            why = (f"label-prior shift: class shares {shift['recent']} vs {shift['reference']} when the champion was "
                   f"trained (total variation {shift['tvd']:.3f}, p={shift['p']:.1e}) since batch {shift['since']}; "
                   f"accuracy {perf.get('recent_accuracy')} (z={z:.1f}): a model fitted to the new shares may do "
                   f"better, the gate decides")
            plan.append(("request_retraining", {"reason": why, "since_batch": shift["since"], "kind": "drift"}, why))
            self.state.label_shift_requested_for = perf.get("champion")  # once per champion: the gate has spoken
            return plan

        estimate = s.get("estimation") or {}
        labels_late = perf.get("latest_batch") is None or (batch is not None and perf["latest_batch"] < batch)
        recently_alerted = self.state.last_alert_batch is not None and batch is not None and \
            batch - self.state.last_alert_batch < p.alert_every
        if estimate and labels_late and estimate.get("label_shift") and not cooling and \
                training.get("kind") != "prior" and estimate.get("prior_shift", 0.0) >= p.label_shift_tvd and \
                (estimate.get("corrected_accuracy") or 0.0) - estimate["accuracy"] >= p.min_prior_gain:
            why = (f"before labels: estimated class priors {estimate['priors']} moved by {estimate['prior_shift']:.3f} "
                   f"(p={estimate['prior_shift_p']:.1e}); re-weighting the champion's classes is estimated to raise "
                   f"accuracy from {estimate['accuracy']:.3f} to {estimate['corrected_accuracy']:.3f}; labels up to "
                   f"batch {perf.get('latest_batch')} so far will confirm or undo it")
            plan.append(("request_retraining", {"reason": why, "since_batch": batch, "kind": "prior"}, why))
            return plan
        if estimate and labels_late and not recently_alerted and (
                (estimate.get("p_value", 1.0) < p.estimate_p and estimate.get("drop", 0.0) >= p.min_drop)
                or (estimate.get("label_shift") and estimate.get("prior_shift", 0.0) >= p.label_shift_tvd)):
            why = (f"before labels: estimated accuracy {estimate['accuracy']:.3f} +- {estimate['std_error']:.3f} vs "
                   f"{estimate['reference_accuracy']:.3f} at training (drop {estimate['drop']:.3f}, "
                   f"p={estimate['p_value']:.1e}); estimated class priors {estimate.get('priors')} (shift "
                   f"{estimate.get('prior_shift', 0.0):.3f}); labels up to batch {perf.get('latest_batch')} will "
                   f"confirm or undo it")
            plan.append(("alert", {"message": why, "severity": "warning"}, why))
            return plan

        # A model trained in a hurry after a change (on little or mixed data) is refit once a full window of data
        # newer than its training data exists; the gate keeps it only if it is better.
        since = training.get("change_point")
        trained_until = training.get("trained_until")
        labelled_upto = perf.get("latest_batch")
        if training.get("kind") in ("drift", "window") and trained_until is not None and labelled_upto is not None \
                and not gradual and labelled_upto - trained_until >= p.refit_window - 1 and \
                self.state.refit_requested_for != perf.get("champion") and not self.state.in_flight:
            why = (f"champion {perf.get('champion')} was trained right after the change at batch {since} on data up "
                   f"to batch {trained_until}; {labelled_upto - trained_until} newer labelled batches exist: refit")
            plan.append(("request_retraining", {"reason": why, "since_batch": since, "kind": "refit"}, why))
            return plan

        if drift.get("detected") and not plan:
            columns = list(drift.get("drifted_columns") or [])
            recent = self.state.last_alert_batch is not None and batch is not None and \
                batch - self.state.last_alert_batch < p.alert_every and columns == self.state.last_alert_columns
            if not recent:
                what = f"columns {columns}" if columns else "the prediction distribution"
                why = (f"distribution shift in {what} (score {drift.get('score', 0.0):.2f}) without a performance "
                       f"drop (z={z:.1f}): not retraining")
                plan.append(("alert", {"message": why, "severity": "warning"}, why))
                return plan
        if not plan:
            why = "no corruption, no performance drop, nothing new drifted"
            plan.append(("ignore", {"reason": why}, why))
        return plan

    def rule_policy(self, ctx: PlanningContext) -> Decision:
        done = {t for t, _, _ in self.taken}
        for name, args, why in self.assess():
            if name in done or name not in ctx.tool_names:
                continue
            if done and name == "ignore":
                break  # something already ran; ignore adds nothing
            return Decision(name, args, why)
        return finish("monitoring decision taken")

    # ------------------------------------------------------------------ result
    def decision(self, planner: str = "rule") -> MonitoringDecision:
        names = [t for t, _, _ in self.taken] or ["ignore"]
        main = max(names, key=lambda n: _PRIORITY.get(n, 0))
        reasons = [why for _, _, why in self.taken if why] or ["no action taken"]
        return MonitoringDecision(action=main, reasons=reasons, signals=self.signals, actions=names,
                                  batch=self.signals.get("batch"), retrain=self.retrain,
                                  rollback_to=self.rollback_to, planner=planner)

    def result(self) -> dict[str, Any]:
        return {"decision": self.decision().to_dict(), "state": self.state.to_dict()}
