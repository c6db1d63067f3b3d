"""The flywheel's one turn, piece by piece: the monitoring agent's decision on a batch's evidence
(``flywheel.monitor`` gathers it, ``data.pipeline.steward_features`` stewards the batch first), and continuous
learning (annotate -> train -> gate -> promote) through a :class:`ModelStore`.

The backtest calls these in-process with a :class:`~airflow_agentic.flywheel.store.MemoryStore` (or an MLflow
registry); ``ContinuousLearningOperator``, the monitoring DAG and the demo call the same functions with an
:class:`~airflow_agentic.flywheel.store.MlflowStore`. Only storage differs, so the backtest's numbers describe the
DAGs.

Nothing heavy at import: pandas, sklearn and the models/data packages load inside the functions that use them.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from airflow_agentic.agents.monitoring import MonitoringAgent, MonitoringDecision, MonitoringPolicy, MonitoringState
from airflow_agentic.flywheel.monitor import predict
from airflow_agentic.flywheel.store import ModelEntry, ModelStore

if TYPE_CHECKING:
    import pandas as pd

    from airflow_agentic.agents.planner import Planner
    from airflow_agentic.drift.profile import ReferenceProfile

log = logging.getLogger(__name__)

# Written by LabelStudioAnnotationSensor next to each label (given | auto | human); the first one is the source.
PROVENANCE_COLUMNS = ("label_source", "label_annotator", "label_confidence")
# Histogram gradient boosting with fixed parameters (as in the reference baselines): a fit takes well under a second.
DEFAULT_FAMILY = "hist_gradient_boosting"
DEFAULT_PARAMS: dict[str, Any] = {"max_iter": 100, "learning_rate": 0.1, "max_leaf_nodes": 31, "min_samples_leaf": 20}


# ---------------------------------------------------------------------------------------------- models
def single_threaded() -> Any:
    """One native thread for everything inside: small fits and 1,000-row predicts are many times slower when
    OpenMP threads spin on a busy machine. The libraries are loaded first (threadpoolctl only limits loaded ones)."""
    import sklearn.ensemble  # noqa: F401 - loads the OpenMP runtime
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def drift_profile(X: pd.DataFrame, model: Any) -> ReferenceProfile:
    """A version's drift reference: its training features and its own outputs on them (for prediction drift)."""
    from airflow_agentic.drift.profile import ReferenceProfile

    return ReferenceProfile.from_frame(X, predictions=predict(model, X), sample_rows=0)


# ---------------------------------------------------------------------------------------------- monitoring
@dataclass
class MonitoringTurn:
    decision: MonitoringDecision
    llm_calls: int = 0
    fallback: str | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)


def monitoring_turn(signals: dict[str, Any], *, state: MonitoringState, policy: MonitoringPolicy | None = None,
                    planner: Planner | None = None, callbacks: dict[str, Callable[[dict], Any]] | None = None,
                    llm_when: str = "interesting") -> MonitoringTurn:
    """Run the monitoring agent for one batch through the agent loop. With an LLM planner, the model is asked only
    when the evidence is not plainly "nothing to do" (``llm_when="interesting"``) or always (``"always"``)."""
    from airflow_agentic.agents.loop import AgentLoop

    callbacks = callbacks or {}
    agent = MonitoringAgent(signals, policy=policy, state=state, on_alert=callbacks.get("alert"),
                            on_retrain=callbacks.get("retrain"), on_rollback=callbacks.get("rollback"),
                            on_steward=callbacks.get("steward"))
    use = planner
    if planner is not None and llm_when == "interesting":
        first = agent.assess()[0][0]
        perf = signals.get("performance", {})
        if first == "ignore" and not signals.get("drift", {}).get("detected") and (perf.get("z_drop") or 0) < 2.0:
            use = None
    # The planner's own counter also sees the calls of an answer that was thrown away (garbage, then fallback).
    calls_before = getattr(getattr(use, "usage", None), "calls", None)
    run = AgentLoop(agent, planner=use, budget={"max_steps": 6}).run()
    llm_calls = int(run.usage.get("llm_calls", 0))
    if calls_before is not None:
        llm_calls = max(llm_calls, use.usage.calls - calls_before)
    if run.status != "finished":
        log.warning("monitoring loop ended with %s: %s", run.status, run.result)
    kind = "llm" if use is not None and run.fallback_reason is None else "rule"
    decision = agent.decision(planner=kind)
    return MonitoringTurn(decision=decision, llm_calls=llm_calls,
                          fallback=run.fallback_reason, steps=[s.compact() for s in run.steps])


# ---------------------------------------------------------------------------------------------- continuous learning
@dataclass
class TurnSettings:
    """The knobs of a continuous-learning turn; the DAGs, the demo and the backtest use the same defaults.

    :param window: batches of a "last window" candidate, and the longest stretch since a change point trained on.
    :param family: model family of new versions; None keeps the champion's (``hist_gradient_boosting`` at first).
    :param params: the family's parameters; None keeps the champion's (the family defaults at first).
    :param min_gain: accuracy a challenger must gain over the champion on the held-out rows ...
    :param min_z: ... with this paired McNemar z on the same rows, so a lucky holdout promotes nothing.
    :param refit_min_gain: / ``refit_min_z``: the same for a refit of the current concept on a fuller window.
    :param min_rows: fewer labelled training rows than this: no candidate.
    :param auto_label_threshold: the champion labels an unlabelled row when its top probability reaches this.
    :param rare_share: grow classes below this share of the largest one with synthetic (SMOTE) rows. Off by
        default: synthetic rows move the class priors a model learns, which costs accuracy when the priors really
        changed; turn it on when recall of a rare class is the goal.
    """

    window: int = 5
    family: str | None = None
    params: dict[str, Any] | None = None
    min_gain: float = 0.005
    min_z: float = 2.0
    refit_min_gain: float = 0.003
    refit_min_z: float = 1.0
    min_rows: int = 50
    auto_label_threshold: float = 0.9
    rare_share: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ValueError(f"window must be >= 1, not {self.window}")
        if not 0.5 <= self.auto_label_threshold <= 1.0:
            raise ValueError(f"auto_label_threshold must be in [0.5, 1], not {self.auto_label_threshold}")
        if self.rare_share is not None and not 0.0 < self.rare_share < 1.0:
            raise ValueError(f"rare_share must be in (0, 1) or None, not {self.rare_share}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> TurnSettings:
        data = dict(data or {})
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown turn settings {unknown}; known: {sorted(cls.__dataclass_fields__)}")
        return cls(**data)


@dataclass
class LabelledBatch:
    """The clean rows of one batch: features, labels (missing where nobody labelled the row yet) and where each
    label came from (``given``, ``human``, ``auto``). Only given and human labels ever judge a model."""

    X: pd.DataFrame
    y: np.ndarray
    source: np.ndarray | None = None

    @property
    def labelled(self) -> np.ndarray:
        import pandas as pd

        return ~pd.isna(self.y)

    @property
    def judged(self) -> np.ndarray:
        """Rows whose label may judge a model: labelled, and not labelled by a model."""
        if self.source is None:
            return self.labelled
        return self.labelled & (np.asarray(self.source, dtype=object) != "auto")

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, *, target: str, id_column: str | None = None) -> LabelledBatch:
        """A clean batch as the Data Steward or the annotation sensor wrote it: features, ``target`` (missing where
        unlabelled) and, from the sensor, the provenance columns (``label_source`` ...), which are no features."""
        if target not in frame.columns:
            raise ValueError(f"label column {target!r} is not in the batch (columns: {list(frame.columns)[:30]})")
        provenance = [c for c in PROVENANCE_COLUMNS if c in frame.columns]
        source = frame[provenance[0]].to_numpy(dtype=object) if provenance else None
        drop = [target, *provenance, *([id_column] if id_column and id_column in frame.columns else [])]
        y = frame[target].to_numpy()
        if y.dtype.kind == "f" and np.all(np.isnan(y) | (np.mod(np.nan_to_num(y), 1) == 0)):
            # Integer class labels come back as floats when some are missing: keep them comparable to predictions.
            y = np.array([None if np.isnan(v) else int(v) for v in y], dtype=object)
        return cls(frame.drop(columns=drop).reset_index(drop=True), y, source)

    def rows(self, mask: np.ndarray | None = None) -> tuple[pd.DataFrame, np.ndarray]:
        keep = self.labelled if mask is None else (mask & self.labelled)
        return self.X[keep].reset_index(drop=True), _as_labels(np.asarray(self.y)[keep])


@dataclass
class TurnResult:
    """What one turn did and why. ``status``: promoted | reused | rejected | no_data (see ``verdict``)."""

    status: str
    request: dict[str, Any] = field(default_factory=dict)
    champion_before: str | None = None
    champion_after: str | None = None
    candidate: str | None = None
    verdict: dict[str, Any] = field(default_factory=dict)
    promotion: dict[str, Any] | None = None
    entry: dict[str, Any] | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def promoted(self) -> bool:
        return self.status in ("promoted", "reused", "initial")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "promoted": self.promoted}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TurnResult:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


class _Trace:
    """The turn's steps as the agents' own trace records (one trace type for the turn, the agents and the UI)."""

    def __init__(self) -> None:
        self.steps: list[dict[str, Any]] = []
        self._started = time.perf_counter()

    def add(self, agent: str, tool: str, rationale: str, **result: Any) -> None:
        from airflow_agentic.agents.trace import TraceStep

        now = time.perf_counter()
        step = TraceStep(step=len(self.steps) + 1, agent=agent, planner="rule", tool=tool, rationale=rationale,
                         verdict="allowed", status="ok", result=result,
                         latency_ms=round((now - self._started) * 1000, 1))
        self._started = now
        log.info("%s", step.line())
        self.steps.append(step.to_dict())


def _mcnemar(champion_right: np.ndarray, challenger_right: np.ndarray) -> float:
    gain = int((challenger_right & ~champion_right).sum())
    loss = int((champion_right & ~challenger_right).sum())
    return (gain - loss) / math.sqrt(gain + loss) if gain + loss else 0.0


def gate(challenger: Any, champion: Any, X: pd.DataFrame, y: np.ndarray, *, min_gain: float, min_z: float,
         challenger_right: np.ndarray, champion_right: np.ndarray, min_rows: int = 50) -> dict[str, Any]:
    """The deployment gate on held-out labelled rows: a paired McNemar test on the same rows (so that a lucky holdout
    does not promote a model), then the models package's checks (class collapse, enough rows)."""
    from airflow_agentic.models.gate import GatePolicy, evaluate_gate

    z = _mcnemar(champion_right, challenger_right)
    gain = float(challenger_right.mean() - champion_right.mean())
    verdict: dict[str, Any] = {"rows": int(len(challenger_right)),
                               "challenger_accuracy": round(float(challenger_right.mean()), 4),
                               "champion_accuracy": round(float(champion_right.mean()), 4),
                               "gain": round(gain, 4), "mcnemar_z": round(z, 3)}
    passed = gain >= min_gain and z >= min_z
    reasons = [f"gain {gain:.4f} (min {min_gain}), McNemar z {z:.2f} (min {min_z})"]
    if passed:
        checks = evaluate_gate(challenger, champion, X, y, policy=GatePolicy(
            metric="accuracy", margin=min_gain, max_latency_ratio=None, require_signature_match=False,
            min_rows=min_rows))
        passed = checks.passed
        reasons.extend(checks.reasons)
    verdict.update(passed=bool(passed), reasons=reasons)
    return verdict


def _family_and_params(settings: TurnSettings, champion: ModelEntry | None) -> tuple[str, dict[str, Any]]:
    family = settings.family or (champion.family if champion is not None and champion.family else None) \
        or DEFAULT_FAMILY
    if settings.params is not None:
        return family, dict(settings.params)
    if champion is not None and champion.family == family and champion.params:
        return family, dict(champion.params)
    return family, dict(DEFAULT_PARAMS) if family == DEFAULT_FAMILY else {}


def fit(X: pd.DataFrame, y: np.ndarray, family: str, params: dict[str, Any], seed: int = 0) -> Any:
    """One model of ``family`` with ``params`` (the family's defaults fill the rest)."""
    from airflow_agentic.models.dataset import infer_schema
    from airflow_agentic.models.families import get_family

    return get_family(family, random_state=seed).fit(X, y, params, infer_schema(X))


def _annotate(batches: dict[int, LabelledBatch], use: list[int], champion: ModelEntry | None,
              settings: TurnSettings, trace: _Trace) -> tuple[dict[int, LabelledBatch], pd.DataFrame | None]:
    """The Annotation & Synthesis agent on the rows the turn trains on: the champion labels the unlabelled rows it is
    sure of, rare classes get synthetic rows (when ``rare_share`` is set), the rest waits for a person."""
    import pandas as pd

    from airflow_agentic.agents.annotation import LABEL_SOURCE_COLUMN, AnnotationAgent
    from airflow_agentic.agents.loop import AgentLoop
    from airflow_agentic.data.synthesis import SYNTHETIC_COLUMN

    unlabelled = sum(int((~batches[b].labelled).sum()) for b in use)
    if not unlabelled and settings.rare_share is None:
        trace.add("annotation", "skip", "every row the turn trains on has a label; synthesis is off")
        return batches, None
    frames = []
    for b in use:
        frame = batches[b].X.copy()
        frame["__label__"] = batches[b].y
        frame["__row__"] = [f"{b}:{i}" for i in range(len(frame))]
        source = batches[b].source
        frame[LABEL_SOURCE_COLUMN] = source if source is not None else \
            np.where(batches[b].labelled, "given", None)
        frames.append(frame)
    agent = AnnotationAgent(pd.concat(frames, ignore_index=True), target="__label__",
                            champion=champion.model if champion is not None and
                            hasattr(champion.model, "predict_proba") else None,
                            id_column="__row__", threshold=settings.auto_label_threshold,
                            rare_share=settings.rare_share or 0.0, seed=settings.seed)
    run = AgentLoop(agent, budget={"max_steps": 8}).run()
    if run.status != "finished":
        raise RuntimeError(f"annotation agent ended {run.status}: {run.result}")
    pool = agent.pool
    out = dict(batches)
    real = pool[pool["__row__"].notna()]
    for b in use:
        part = real[real["__row__"].str.startswith(f"{b}:")]
        out[b] = LabelledBatch(batches[b].X, part["__label__"].to_numpy(dtype=object),
                               part[LABEL_SOURCE_COLUMN].to_numpy(dtype=object))
    synthetic = None
    if SYNTHETIC_COLUMN in pool.columns and pool[SYNTHETIC_COLUMN].any():
        synthetic = pool[pool[SYNTHETIC_COLUMN]].drop(columns=["__row__", LABEL_SOURCE_COLUMN, SYNTHETIC_COLUMN])
    acted = [s.tool for s in run.steps if s.tool != "finish" and s.status == "ok"]
    trace.add("annotation", "+".join(acted) or "skip", "; ".join(s.rationale for s in run.steps if s.rationale),
              **agent.result())
    return out, synthetic


def _as_labels(y: np.ndarray) -> np.ndarray:
    """Labels in their natural dtype: a column with missing labels, or a pool mixing automatic labels and given ones,
    comes back as objects, and a model trained on objects would predict objects."""
    import pandas as pd

    y = np.asarray(y)
    return pd.Series(y).infer_objects().to_numpy() if y.dtype == object else y


def first_champion(batches: dict[int, LabelledBatch], store: ModelStore, settings: TurnSettings | None = None, *,
                   run_key: str | None = None, lineage: dict[str, str] | None = None) -> TurnResult:
    """The first version, trained on the warm-up batches and promoted without a gate (there is nothing to beat).
    Its expected accuracy is measured on the last batch by a model fitted on the others."""
    began = time.perf_counter()
    settings = settings or TurnSettings()
    trace = _Trace()
    order = sorted(b for b in batches if batches[b].labelled.any())
    if not order:
        return TurnResult("no_data", verdict={"passed": False, "reasons": ["no labelled rows to train on"]})
    family, params = _family_and_params(settings, None)
    expected: dict[str, Any] = {}
    calibration = None
    if len(order) >= 2:
        Xp, yp = _concat([batches[b].rows() for b in order[:-1]])
        Xh, yh = batches[order[-1]].rows(batches[order[-1]].judged)
        if len(yh) and len(np.unique(yp)) >= 2:
            probe = fit(Xp, yp, family, params, settings.seed)
            expected = {"accuracy": float(np.mean(predict(probe, Xh) == yh)), "rows": int(len(yh))}
            # The probe's held-out probabilities calibrate the final fit (same family, a batch more data).
            calibration = calibrate(probe, Xh, yh)
    X, y = _concat([batches[b].rows() for b in order])
    model = fit(X, y, family, params, settings.seed)
    expected["priors"] = priors(y)
    entry = ModelEntry("", model, trained_on=order, kind="initial", expected=expected, family=family,
                       params=params, profile=drift_profile(X, model), calibration=calibration)
    entry = store.register(entry, features=X, run_key=run_key, lineage=lineage)
    trace.add("training", "train_first_version", f"{family} on batches {order[0]}..{order[-1]} ({len(y)} rows)",
              version=entry.version, family=family, expected=expected)
    promotion = store.promote(entry, reason="first version")
    trace.add("deployment", "promote", "no champion yet: the first version serves", champion=entry.version)
    return TurnResult("initial", champion_after=entry.version, candidate="initial", promotion=promotion,
                      entry=entry.describe(), steps=trace.steps, seconds=round(time.perf_counter() - began, 3))


def calibrate(model: Any, X: pd.DataFrame, y: np.ndarray, proba: np.ndarray | None = None) -> dict[str, Any] | None:
    """The calibration of ``model``'s probabilities on held-out labelled rows (``drift.estimation``), so that the
    monitoring step can estimate its accuracy and the batch's class priors before labels arrive. ``proba``: the
    held-out probabilities when they came from other fits (cross-fitting). None when it cannot be fitted (no
    probabilities, one class): estimation is an extra signal, never a reason to fail a turn."""
    from airflow_agentic.drift.estimation import fit_calibration

    classes = getattr(model, "classes_", None)
    if classes is None or not hasattr(model, "predict_proba") or len(y) < 50:
        return None
    try:
        proba = np.asarray(model.predict_proba(X)) if proba is None else proba
        return fit_calibration(proba, y, list(classes)).to_dict()
    except ValueError as exc:
        log.warning("no calibration for performance estimation: %s", exc)
        return None


class PriorCorrected:
    """A model whose class priors were re-weighted to the ones estimated on recent batches (the champion's decision
    under label shift, Saerens et al. 2002): its calibrated probabilities times new / training priors,
    renormalised. Registered as a version of its own, so labels arriving later can confirm it or roll it back."""

    def __init__(self, model: Any, calibration: dict[str, Any], priors: dict[str, float]):
        from airflow_agentic.drift.estimation import Calibration

        self.model = model
        self.calibration = calibration
        self.classes_ = np.asarray(model.classes_)
        self.priors = [float(priors[str(c)]) for c in Calibration.from_dict(calibration).classes]

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        from airflow_agentic.drift.estimation import Calibration, prior_corrected

        return prior_corrected(self.model.predict_proba(X), Calibration.from_dict(self.calibration), self.priors)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def _correct_priors(request: dict[str, Any], champion: ModelEntry, store: ModelStore, settings: TurnSettings,
                    trace: _Trace, result: TurnResult, run_key: str | None,
                    lineage: dict[str, str] | None) -> TurnResult:
    """A prior correction of the champion before labels arrive: promoted when the estimated gain on the batch that
    showed the shift reaches ``min_gain`` (the estimate is the gate; the realised labels judge it afterwards, and
    the monitoring agent rolls it back when it is worse than the version it replaced)."""
    estimate = dict(request.get("estimate") or {})
    priors = estimate.get("priors")
    gain = (estimate.get("corrected_accuracy") or 0.0) - (estimate.get("accuracy") or 0.0)
    verdict = {"kind": "prior", "passed": False, "estimated_gain": round(gain, 4), "priors": priors,
               "reasons": [f"estimated gain {gain:.4f} (min {settings.min_gain}) from re-weighting the classes to "
                           f"{priors}"]}
    result.verdict, result.candidate = verdict, "prior_correction"
    if not champion.calibration or not priors or isinstance(champion.model, PriorCorrected):
        verdict["reasons"].append("the champion has no calibration or is a prior correction already")
    elif gain >= settings.min_gain:
        verdict["passed"] = True
    trace.add("deployment", "gate", "; ".join(verdict["reasons"]), passed=verdict["passed"], candidate="prior")
    if not verdict["passed"]:
        result.status = "rejected"
        return result
    entry = ModelEntry("", PriorCorrected(champion.model, champion.calibration, priors),
                       trained_on=list(champion.trained_on), kind="prior", change_point=request.get("batch"),
                       expected={"accuracy": float(estimate["corrected_accuracy"]),
                                 "rows": int(champion.expected.get("rows") or 0), "priors": dict(priors)},
                       replaced=champion.version, family=champion.family, params=champion.params,
                       profile=champion.profile)
    entry = store.register(entry, features=None, run_key=run_key, lineage={**(lineage or {}),
                           "prior_estimate": str(priors)})
    result.promotion = store.promote(entry, reason=f"prior correction: {verdict['reasons'][0]}")
    result.champion_after, result.entry, result.status = entry.version, entry.describe(), "promoted"
    trace.add("deployment", "promote", f"prior-corrected champion {champion.version}", champion=entry.version,
              previous=champion.version)
    return result


def priors(y: np.ndarray) -> dict[str, float]:
    """Class shares of training labels, keyed as the monitoring records key their label counts."""
    from airflow_agentic.flywheel.monitor import class_counts

    counts = class_counts(y)
    total = sum(counts.values()) or 1
    return {c: round(n / total, 6) for c, n in counts.items()}


def _concat(parts: list[tuple[pd.DataFrame, np.ndarray]]) -> tuple[pd.DataFrame, np.ndarray]:
    import pandas as pd

    X = pd.concat([p[0] for p in parts], ignore_index=True)
    y = _as_labels(np.concatenate([np.asarray(p[1], dtype=object) for p in parts]))
    return X, y


def learn(request: dict[str, Any], batches: dict[int, LabelledBatch], store: ModelStore,
          settings: TurnSettings | None = None, *, labelled_upto: int | None = None, run_key: str | None = None,
          lineage: dict[str, str] | None = None) -> TurnResult:
    """One continuous-learning turn: annotate -> train candidates -> gate -> register and promote, or keep the
    champion. The same function serves ``ContinuousLearningOperator`` (MLflow registry), the demo and the backtest.

    Candidates: a model on the data since the change point (``request["since_batch"]``), one on the last window,
    and the earlier champions (a recurring concept). The best on held-out recent rows must beat the champion at the
    gate; a fresh winner is then refit on all its rows, holdout included, and registered.

    :param request: the monitoring agent's retraining request: ``kind`` (``drift`` after a performance drop,
        ``refit`` when a full window of post-change data exists) and ``since_batch`` (the estimated change point).
    :param batches: the clean rows of the labelled batches by batch number (at least the last ``2 * window``).
    :param labelled_upto: the newest batch whose labels may be used (default: the newest in ``batches``).
    :param run_key: a stable key of this turn (e.g. ``dag.task.run``): a retry registers no second version.
    """
    began = time.perf_counter()
    settings = settings or TurnSettings()
    trace = _Trace()
    champion = store.champion()
    if champion is None:
        return first_champion(batches, store, settings, run_key=run_key, lineage=lineage)
    window = settings.window
    j = max(batches) if labelled_upto is None else int(labelled_upto)
    kind = request.get("kind", "drift")
    if kind not in ("drift", "refit", "prior"):
        raise ValueError(f"request kind must be 'drift', 'refit' or 'prior', not {kind!r}")
    since = request.get("since_batch")
    since = j if since is None else int(min(max(int(since), j - 2 * window + 1), j))
    result = TurnResult("rejected", request=dict(request), champion_before=champion.version,
                        champion_after=champion.version)

    def finish(status: str, reasons: list[str] | None = None) -> TurnResult:
        if reasons is not None:
            result.verdict = {"passed": False, "reasons": reasons}
        result.status = status
        result.steps = trace.steps
        result.seconds = round(time.perf_counter() - began, 3)
        return result

    if kind == "prior":
        return finish(_correct_priors(request, champion, store, settings, trace, result, run_key, lineage).status)

    if j not in batches or not batches[j].judged.any():
        trace.add("continuous_learning", "stop", f"no labelled clean rows in batch {j}")
        return finish("no_data", [f"no labelled clean rows in batch {j}"])
    use = sorted(b for b in batches if min(since, j - window + 1) <= b <= j)
    batches, synthetic = _annotate(batches, use, champion, settings, trace)
    has_rows = [b for b in use if batches[b].labelled.any()]
    recipes: dict[str, list[int]] = {}
    since_change = [b for b in has_rows if b >= since]
    if kind == "refit":
        recipes["since_change"] = since_change[-window:]
    else:
        recipes["since_change"] = since_change
        last_window = [b for b in has_rows if b >= j - window + 1]
        if last_window != recipes["since_change"]:
            recipes["window"] = last_window

    Xj, yj = batches[j].rows(batches[j].judged)
    others_j = batches[j].labelled & ~batches[j].judged  # auto-labelled rows of the newest batch: training only
    # Held-out rows: the newest batch's judged rows when the recipes have older post-change batches to train on;
    # otherwise that single batch is cross-fitted (k folds), so that every one of its rows is scored out of fold.
    if len(recipes["since_change"]) >= 2:
        k, folds = 1, np.zeros(len(yj), dtype=int)
    else:
        k, folds = 3, np.random.default_rng(settings.seed + j).permutation(len(yj)) % 3
    family, params = _family_and_params(settings, champion)

    def rows(recipe: list[int], exclude_fold: int | None) -> tuple[pd.DataFrame, np.ndarray]:
        parts = []
        for b in recipe:
            if b != j:
                parts.append(batches[b].rows())
                continue
            if exclude_fold is None:
                parts.append(batches[b].rows())
                continue
            keep = folds != exclude_fold if k > 1 else np.zeros(len(yj), dtype=bool)
            parts.append((Xj[keep], yj[keep]))
            if others_j.any():
                parts.append(batches[b].rows(others_j))
        if synthetic is not None:
            parts.append((synthetic.drop(columns=["__label__"]), synthetic["__label__"].to_numpy()))
        return _concat(parts)

    champion_right = predict(champion.model, Xj) == yj
    candidates: list[tuple[str, Any, np.ndarray]] = []
    held_proba: dict[str, np.ndarray] = {}  # out-of-fold probabilities: the winner's calibration
    for name, recipe in recipes.items():
        right = np.zeros(len(yj), dtype=bool)
        model = None
        for f in range(k):
            X, y = rows(recipe, exclude_fold=f)
            if len(y) < settings.min_rows or len(np.unique(y)) < 2:
                model = None
                break
            model = fit(X, y, family, params, settings.seed)
            held = folds == f
            if hasattr(model, "predict_proba"):
                proba = np.asarray(model.predict_proba(Xj[held]))
                if name not in held_proba:
                    held_proba[name] = np.zeros((len(yj), proba.shape[1]))
                if held_proba[name].shape[1] == proba.shape[1]:
                    held_proba[name][held] = proba
                right[held] = np.asarray(model.classes_)[proba.argmax(axis=1)] == yj[held]
            else:
                right[held] = predict(model, Xj[held]) == yj[held]
        if model is not None:
            candidates.append((name, model, right))
    if kind != "refit":
        for entry in store.earlier():
            candidates.append((f"reuse:{entry.version}", entry.model, predict(entry.model, Xj) == yj))
    scores = {n: round(float(r.mean()), 4) for n, _, r in candidates}
    trace.add("training", "train_candidates", f"{family} on {recipes} (held out: batch {j}, {len(yj)} rows"
              f"{', cross-fitted' if k > 1 else ''}); champion {champion.version} scores "
              f"{float(champion_right.mean()):.4f}", family=family, params=params, candidates=scores,
              champion=round(float(champion_right.mean()), 4))
    if not candidates:
        return finish("rejected", ["no usable training data"])
    # Best out of sample; on a tie an earlier model wins (nothing to train, and it saw more data).
    name, model, right = max(candidates, key=lambda c: (c[2].mean(), c[0].startswith("reuse")))
    check = folds == (k - 1) if not name.startswith("reuse:") else np.ones(len(yj), dtype=bool)
    refit = kind == "refit"
    verdict = gate(model, champion.model, Xj[check], yj[check],
                   min_gain=settings.refit_min_gain if refit else settings.min_gain,
                   min_z=settings.refit_min_z if refit else settings.min_z, challenger_right=right,
                   champion_right=champion_right, min_rows=min(settings.min_rows, int(check.sum())))
    verdict.update(kind=kind, since_batch=since, candidate=name, candidates=scores)
    result.verdict, result.candidate = verdict, name
    trace.add("deployment", "gate", "; ".join(verdict["reasons"]), passed=verdict["passed"], candidate=name,
              gain=verdict["gain"], mcnemar_z=verdict["mcnemar_z"])
    if not verdict["passed"]:
        trace.add("deployment", "keep_champion", f"{name} did not pass the gate", champion=champion.version)
        return finish("rejected")
    expected = {"accuracy": float(right.mean()), "rows": int(len(yj))}
    reason = request.get("reason") or f"{kind} turn"
    if name.startswith("reuse:"):
        earlier = store.get(name.split(":", 1)[1])
        entry = ModelEntry(earlier.version, earlier.model, trained_on=earlier.trained_on, kind="reuse",
                           change_point=since, expected={**expected, "priors": earlier.expected.get("priors")}, replaced=champion.version, family=earlier.family,
                           params=earlier.params, profile=earlier.profile, calibration=earlier.calibration)
        status = "reused"
    else:
        recipe = recipes[name]
        X, y = rows(recipe, exclude_fold=None)
        final = fit(X, y, family, params, settings.seed)
        expected["priors"] = priors(y)
        entry = ModelEntry("", final, trained_on=list(recipe),
                           kind="refit" if refit else ("drift" if name == "since_change" else "window"),
                           change_point=since, fast=not refit and name == "since_change" and len(recipe) < window,
                           expected=expected, replaced=champion.version, family=family, params=params,
                           profile=drift_profile(X, final),
                           calibration=calibrate(final, Xj, yj, held_proba.get(name)))
        entry = store.register(entry, features=X, run_key=run_key, lineage=lineage)
        status = "promoted"
        trace.add("training", "register", f"{name} refit on batches {recipe} ({len(y)} rows)",
                  version=entry.version)
    result.promotion = store.promote(entry, reason=f"{reason} (gate: {verdict['reasons'][0]})")
    result.champion_after, result.entry = entry.version, entry.describe()
    trace.add("deployment", "promote", f"{name} beats champion {champion.version}", champion=entry.version,
              previous=champion.version)
    return finish(status)

__all__ = [
    "DEFAULT_FAMILY", "DEFAULT_PARAMS", "LabelledBatch", "ModelEntry", "MonitoringTurn", "TurnResult",
    "TurnSettings", "calibrate", "drift_profile", "first_champion", "fit", "gate", "learn", "monitoring_turn",
    "predict", "priors",
]
