"""Continuous learning, one turn from fresh data: Data Steward -> annotation check -> training (warm-started from
the champion) -> deployment gate -> promotion or not, with the decision trace of the whole turn. Also the batch
inference + evidence step of the monitoring DAG. No Airflow: ``operators/continuous.py`` is the thin shell, the demo
calls these functions directly for the first champion.

Every step reuses the agents and functions the other parts use: ``flywheel.turn.steward_rows`` (the Data Steward
agent loop), the ``TrainingAgent`` (architect + HPO, warm-started from the champion, registers ``challenger``) and the
``DeploymentAgent`` (gate, then ``ModelRegistry.promote``: aliases champion / previous), each in its agent loop
exactly as ``TrainingOperator`` and ``DeploymentOperator`` run them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

DEFAULT_FAMILIES = ("logistic_regression", "hist_gradient_boosting")
# Accuracy, so the holdout score doubles as the champion's expected accuracy for the monitoring agent; families
# differ in latency by design, so the latency ratio is not a reason to keep a worse model.
DEFAULT_GATE = {"metric": "accuracy", "margin": 0.01, "max_latency_ratio": None, "min_rows": 50}
EXPECTED_ACCURACY_TAG = "agentic.expected_accuracy"
EXPECTED_ROWS_TAG = "agentic.expected_rows"
PROFILE_TAG = "agentic.profile"
# Written by LabelStudioAnnotationSensor next to each label (given | auto | human); the first one is the source.
PROVENANCE_COLUMNS = ("label_source", "label_annotator", "label_confidence")


@dataclass
class ContinuousTurnResult:
    """What one turn did and why: ``status`` is promoted | rejected | needs_annotation | no_data."""

    model_name: str
    status: str
    champion_before: str | None = None
    champion_after: str | None = None
    challenger: str | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    training: dict[str, Any] = field(default_factory=dict)
    verdict: dict[str, Any] = field(default_factory=dict)
    promotion: dict[str, Any] | None = None
    profile: str | None = None
    seconds: float = 0.0

    @property
    def promoted(self) -> bool:
        return self.status == "promoted"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "promoted": self.promoted}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContinuousTurnResult:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def read_frames(locations: list[str]) -> pd.DataFrame:
    import pandas as pd

    from airflow_agentic.data import io as dio

    frames = [dio.read_batch(loc) for loc in locations]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def profile_location(profile_dir: str, model_name: str, version: str) -> str:
    return f"{profile_dir.rstrip('/')}/{model_name}-v{version}.npz"


def champion_version(model_name: str, tracking_uri: str | None = None, alias: str = "champion") -> str | None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return str(MlflowClient(tracking_uri=tracking_uri).get_model_version_by_alias(model_name, alias).version)
    except MlflowException:
        return None


def _champion_model(model_name: str) -> Any:
    """The champion's sklearn model (for ``predict_proba``), or None when there is none or it has no probabilities."""
    import mlflow.sklearn

    try:
        model = mlflow.sklearn.load_model(f"models:/{model_name}@champion")
    except Exception as exc:  # noqa: BLE001 - no champion yet, or not a sklearn model: nothing labels automatically
        log.info("no champion to auto-label with: %s", exc)
        return None
    return model if hasattr(model, "predict_proba") else None


def _reference_predictions(model_uri: str, X: pd.DataFrame) -> np.ndarray | None:
    """The new model's outputs on its reference rows, kept in the drift profile so that monitoring can test the
    prediction distribution before any label arrives (as the backtest does). None when the model cannot be loaded:
    the profile then covers the features only, and the monitoring step skips prediction drift."""
    import mlflow.pyfunc

    try:
        return np.asarray(mlflow.pyfunc.load_model(model_uri).predict(X)).reshape(len(X), -1)[:, 0]
    except Exception as exc:  # noqa: BLE001 - prediction drift is an extra signal, not a reason to fail the turn
        log.warning("no reference predictions for the drift profile (%s): prediction drift will not be checked", exc)
        return None


def _step(steps: list[dict[str, Any]], agent: str, action: str, reason: str, started: float, **data: Any) -> None:
    steps.append({"agent": agent, "action": action, "reason": reason,
                  "seconds": round(time.perf_counter() - started, 3), **data})


def continuous_turn(frame: pd.DataFrame, *, target: str, model_name: str, experiment_name: str,
                    id_column: str | None = "row_id", families: tuple[str, ...] | list[str] | None = None,
                    n_trials: int = 6, warm_start: bool = True, holdout_fraction: float = 0.3,
                    min_labelled_rows: int = 100, gate_policy: dict[str, Any] | None = None,
                    tracking_uri: str | None = None, profile_dir: str | None = None, promote: bool = True,
                    data_location: str | None = None, lineage: dict[str, str] | None = None,
                    annotation_policy: dict[str, Any] | None = None, seed: int = 0) -> ContinuousTurnResult:
    """One flywheel turn on ``frame`` (features, ``target`` and optionally ``id_column``)."""
    import mlflow
    from mlflow import MlflowClient

    from airflow_agentic.agents.annotation import LABEL_SOURCE_COLUMN, AnnotationAgent
    from airflow_agentic.agents.deployment import DeploymentAgent
    from airflow_agentic.agents.loop import AgentLoop
    from airflow_agentic.agents.training import TrainingAgent
    from airflow_agentic.flywheel import turn as T
    from airflow_agentic.models.dataset import Dataset
    from airflow_agentic.models.gate import GatePolicy, GateVerdict, gate_from_registry
    from airflow_agentic.models.registry import ModelRegistry
    from airflow_agentic.data.synthesis import SYNTHETIC_COLUMN
    from airflow_agentic.models.training import TrainingResult

    began = time.perf_counter()
    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    lineage = dict(lineage or {})
    result = ContinuousTurnResult(model_name=model_name, status="no_data",
                                  champion_before=champion_version(model_name, tracking_uri))
    steps = result.steps

    # 1. Data Steward: the agent loop repairs or quarantines rows; nothing is deleted, quarantined rows sit out.
    started = time.perf_counter()
    if frame.empty or target not in frame.columns:
        _step(steps, "data_steward", "stop", f"no rows or no {target!r} column", started, rows=len(frame))
        result.seconds = round(time.perf_counter() - began, 3)
        return result
    # Label provenance from the annotation sensor's training file is not a feature: set aside, kept per row.
    provenance = [c for c in PROVENANCE_COLUMNS if c in frame.columns]
    sources = frame[provenance[0]] if provenance else None
    frame = frame.drop(columns=provenance)
    features = frame.drop(columns=[target])
    outcome = T.steward_rows(features, T.steward_profile(features, id_column), id_column=id_column)
    clean = frame[outcome.clean].reset_index(drop=True)
    if sources is not None:
        clean[LABEL_SOURCE_COLUMN] = sources[outcome.clean].reset_index(drop=True).where(clean[target].notna())
    _step(steps, "data_steward", "steward_batch", "quarantine what the rules or the agent could not repair",
          started, rows=len(frame), clean=len(clean), quarantined=outcome.quarantined, by_reason=outcome.by_reason)

    # 2. Annotation & Synthesis. Real (given) labels gate the challenger, so the holdout is drawn from them first;
    # the agent then labels the confident rows with the champion and grows rare classes, in the training pool only.
    started = time.perf_counter()
    # Labels a model made are never evaluated on: only given and human labels can gate.
    given = (clean[target].notna() & (clean.get(LABEL_SOURCE_COLUMN, "given") != "auto")).to_numpy()
    if int(given.sum()) < min_labelled_rows:
        result.status = "needs_annotation"
        _step(steps, "annotation", "request_labels", f"{int(given.sum())} labelled rows < {min_labelled_rows}",
              started, labelled=int(given.sum()), unlabelled=int((~given).sum()))
        result.seconds = round(time.perf_counter() - began, 3)
        return result
    rng = np.random.default_rng(seed)
    is_holdout = given & (rng.random(len(clean)) < holdout_fraction)
    holdout, pool = clean[is_holdout].reset_index(drop=True), clean[~is_holdout].reset_index(drop=True)
    champion_model = _champion_model(model_name) if pool[target].isna().any() else None
    annotation = AnnotationAgent(pool, target=target, champion=champion_model, id_column=id_column, seed=seed,
                                 **(annotation_policy or {}))
    run = AgentLoop(annotation, budget={"max_steps": 8}).run()
    if run.status != "finished":
        raise RuntimeError(f"annotation agent ended {run.status}: {run.result}")
    pool = annotation.training_rows()
    acted = [s.tool for s in run.steps if s.tool != "finish" and s.status == "ok"]
    _step(steps, "annotation", "+".join(acted) or "skip", "; ".join(s.rationale for s in run.steps) or "labels present",
          started,
          **annotation.result(), agent_steps=[s.compact() for s in run.steps])
    lineage.update({"labels.auto": str(int((pool[LABEL_SOURCE_COLUMN] == "auto").sum())),
                    "rows.synthetic": str(annotation.synthetic_rows)})

    # 3. Training: the held-out rows never seen by the search gate the challenger against the champion.
    started = time.perf_counter()
    drop = [c for c in (target, id_column, LABEL_SOURCE_COLUMN, SYNTHETIC_COLUMN) if c and c in pool.columns]

    def split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
        labels = frame[target].astype(int) if frame[target].dtype.kind == "f" else frame[target]
        return frame.drop(columns=[c for c in drop if c in frame.columns]), labels.reset_index(drop=True)

    X_train, y_train = split(pool)
    X_hold, y_hold = split(holdout)
    training_agent = TrainingAgent(
        Dataset(X_train, y_train, location=data_location), model_name=model_name, experiment_name=experiment_name,
        run_key=lineage.get("run_key") or f"{model_name}-{time.time_ns()}", client=MlflowClient(tracking_uri),
        tracking_uri=tracking_uri, families=list(families or DEFAULT_FAMILIES), metric="accuracy",
        n_trials=n_trials, warm_start=warm_start, lineage={k: v for k, v in lineage.items() if k != "run_key"},
        hpo_config={"cv_folds": 3, "n_startup_trials": min(5, n_trials), "seed": seed})
    run = AgentLoop(training_agent, budget={"max_steps": 40}).run()
    if run.status != "finished" or not run.result.get("version"):
        raise RuntimeError(f"training agent ended {run.status}: {run.result}")
    training = TrainingResult.from_dict(run.result)
    result.training = training.to_dict()
    result.challenger = training.version
    _step(steps, "training", "train_challenger", f"best of {training.family} by cv {training.metric}", started,
          version=training.version, family=training.family, cv_score=round(training.cv_score, 4),
          rows=len(X_train), warm_start=warm_start, agent_steps=[s.compact() for s in run.steps])

    # 4-5. Deployment agent: gate on the holdout, then promote (champion := challenger, previous := old) or reject.
    started = time.perf_counter()
    policy = GatePolicy.from_dict({**DEFAULT_GATE, **(gate_policy or {})})
    registry = ModelRegistry(tracking_uri)
    client = registry.client
    # A retried turn whose promotion already landed finds its challenger serving as champion: it finishes the
    # bookkeeping (tags, profile) and reports the promotion instead of gating the model against itself.
    already_promoted = promote and champion_version(model_name, tracking_uri) == training.version
    if not promote or already_promoted:
        # After the promotion the challenger is `champion` and the one it beat is `previous`: the same comparison.
        aliases = {"challenger_alias": "champion", "champion_alias": "previous"} if already_promoted else {}
        verdict = gate_from_registry(model_name, X_hold, y_hold, policy=policy, tracking_uri=tracking_uri,
                                     **aliases)
        promotion_record = (registry.promote(model_name, training.version, reason="retried turn").to_dict()
                            if already_promoted else None)
        deployment: dict[str, Any] = {"verdict": verdict.to_dict(), "promotion": promotion_record}
        agent_steps: list[dict[str, Any]] = []
    else:
        agent = DeploymentAgent(model_name, (X_hold, y_hold), registry=registry, policy=policy,
                                production=False, tracking_uri=tracking_uri)
        run = AgentLoop(agent, budget={"max_steps": 10}).run()
        if run.status != "finished":
            raise RuntimeError(f"deployment agent ended {run.status}: {run.result}")
        deployment, agent_steps = dict(run.result), [s.compact() for s in run.steps]
    verdict = GateVerdict.from_dict(deployment.get("verdict") or {"passed": False, "reasons": ["no verdict"]})
    result.verdict = verdict.to_dict()
    _step(steps, "deployment", "gate", "; ".join(verdict.reasons), started, passed=verdict.passed,
          rows=len(X_hold), challenger_score=verdict.numbers.get("challenger_score"),
          champion_score=verdict.numbers.get("champion_score"), agent_steps=agent_steps)

    if policy.metric == "accuracy" and verdict.numbers.get("challenger_score") is not None:
        client.set_model_version_tag(model_name, training.version, EXPECTED_ACCURACY_TAG,
                                     f"{verdict.numbers['challenger_score']:.6f}")
        client.set_model_version_tag(model_name, training.version, EXPECTED_ROWS_TAG, str(len(X_hold)))
    if profile_dir:
        from airflow_agentic.data import io as dio
        from airflow_agentic.drift.profile import ReferenceProfile

        location = profile_location(profile_dir, model_name, training.version)
        # The drift reference is what production will look like: real rows only, never the synthetic ones.
        real = ~pool[SYNTHETIC_COLUMN].to_numpy(bool) if SYNTHETIC_COLUMN in pool.columns else slice(None)
        reference = X_train[real]
        profile = ReferenceProfile.from_frame(reference, predictions=_reference_predictions(training.model_uri,
                                                                                           reference),
                                              sample_rows=0)
        dio.write_bytes_atomic(location, profile.to_bytes())
        client.set_model_version_tag(model_name, training.version, PROFILE_TAG, location)
        result.profile = location
    started = time.perf_counter()
    promotion = deployment.get("promotion")
    if promotion:
        result.promotion = promotion
        result.status = "promoted"
        result.champion_after = promotion.get("to_version")
        _step(steps, "deployment", "promote", promotion.get("reason") or "gate passed", started,
              champion=promotion.get("to_version"), previous=promotion.get("previous_version"))
    else:
        result.status = "rejected"
        result.champion_after = champion_version(model_name, tracking_uri)
        _step(steps, "deployment", "keep_champion" if promote else "hold",
              "the challenger did not pass the gate" if promote else "promotion disabled for this turn", started,
              champion=result.champion_after, challenger=training.version)
    result.seconds = round(time.perf_counter() - began, 3)
    return result


# ---------------------------------------------------------------------------------------------- monitoring step
def _same(predictions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    try:
        return predictions.astype(float) == labels.astype(float)
    except (TypeError, ValueError):
        return predictions.astype(str) == labels.astype(str)


def monitor_batch(frame: pd.DataFrame, *, model_name: str, target: str | None = "label",
                  id_column: str | None = "row_id", batch: int = 0, tracking_uri: str | None = None,
                  records_location: str | None = None, predictions_location: str | None = None,
                  quality: dict[str, Any] | None = None) -> dict[str, Any]:
    """Batch inference with ``models:/<name>@champion`` plus the evidence the monitoring agent needs: the drift
    report against the champion's training profile and the champion's labelled performance records."""
    from mlflow import MlflowClient

    from airflow_agentic.agents.monitoring import BatchPerformance
    from airflow_agentic.data import io as dio
    from airflow_agentic.drift.profile import ReferenceProfile
    from airflow_agentic.models.serving import BatchServing

    serving = BatchServing(model_name, alias="champion", tracking_uri=tracking_uri)
    drop = [c for c in (target, id_column) if c and c in frame.columns]
    X = frame.drop(columns=drop)
    predictions = np.asarray(serving.predict(X)).reshape(len(X), -1)[:, 0] if len(X) else np.asarray([])
    version = serving.last_version or "unknown"
    out: dict[str, Any] = {"batch": int(batch), "champion": version, "rows": len(frame), "quality": quality or {}}
    if predictions_location:
        scored = frame[[id_column]].copy() if id_column and id_column in frame.columns else frame.iloc[:, :0].copy()
        scored["prediction"] = predictions
        scored["model_version"] = version
        out["predictions"] = dio.write_frame(scored, predictions_location)

    tags = MlflowClient(tracking_uri=tracking_uri).get_model_version(model_name, version).tags or {}
    drift: dict[str, Any] = {"detected": False, "score": 0.0}
    if tags.get(PROFILE_TAG):
        try:
            from airflow_agentic.drift.detectors import detect_drift

            profile = ReferenceProfile.from_bytes(dio.read_bytes(tags[PROFILE_TAG]))
            # The champion's outputs against its reference outputs: prediction drift needs no labels.
            with_predictions = profile.prediction is not None and len(predictions) > 0
            drift = detect_drift(profile, X, prediction=predictions if with_predictions else None).to_dict()
        except Exception as exc:  # noqa: BLE001 - drift is advisory, performance decides
            log.warning("drift check failed: %s", exc)
            drift = {"detected": False, "score": 0.0, "error": str(exc)}
    out["drift"] = drift

    records: list[dict[str, Any]] = []
    if records_location:
        try:
            records = list(dio.read_json(records_location))
        except FileNotFoundError:
            records = []
        except Exception as exc:  # noqa: BLE001 - a broken history is started again, not fatal
            log.warning("performance history unreadable (%s); starting again", exc)
    if target and target in frame.columns:
        labelled = frame[target].notna().to_numpy()
        if labelled.any():
            right = _same(predictions[labelled], frame[target][labelled].to_numpy())
            record = BatchPerformance(batch=int(batch), version=version, rows=int(labelled.sum()),
                                      correct=int(right.sum())).to_dict()
            # A retried task scores the same batch again: its record replaces the first instead of counting twice.
            records = [r for r in records if (r.get("batch"), r.get("version")) != (record["batch"], version)]
            records.append(record)
            if records_location:
                dio.write_json(records[-200:], records_location)
    expected = None
    if tags.get(EXPECTED_ACCURACY_TAG):
        expected = {"accuracy": float(tags[EXPECTED_ACCURACY_TAG]), "rows": int(tags.get(EXPECTED_ROWS_TAG) or 300)}
    out["performance"] = {"records": [r for r in records if r["version"] == version], "champion": version,
                          "expected": expected}
    own = out["performance"]["records"]
    out["accuracy"] = round(own[-1]["correct"] / own[-1]["rows"], 4) if own and own[-1]["batch"] == batch else None
    return out
