"""Where the flywheel's model versions live: the one interface the turn talks to, and its two backends.

The turn (:mod:`airflow_agentic.flywheel.turn`) decides, trains, gates and promotes through :class:`ModelStore` only,
so the backtest and the Airflow operators run the same code and differ only in where versions are kept:

- :class:`MlflowStore`: the MLflow model registry (what the DAGs, the demo and ``backtest --registry URI`` use).
  Promotion and rollback move the registered-model aliases ``champion`` / ``previous`` through
  :class:`~airflow_agentic.models.registry.ModelRegistry`; what the turn needs to know about a version (the batches
  it was trained on, its expected accuracy, family and parameters, drift profile) is kept in version tags.
- :class:`MemoryStore`: the same bookkeeping in a dict, for the backtest's default run (50 batches in seconds).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from airflow_agentic.drift.profile import ReferenceProfile

log = logging.getLogger(__name__)

TAG = "agentic."
EXPECTED_ACCURACY_TAG = "agentic.expected_accuracy"
EXPECTED_ROWS_TAG = "agentic.expected_rows"
PROFILE_TAG = "agentic.profile"
TURN_TAG = "agentic.turn"  # JSON: trained_on, kind, change_point, fast, replaced
# How many earlier champions stay at hand for reuse (a recurring concept), shadow scoring and rollback.
EARLIER_KEPT = 4


@dataclass
class ModelEntry:
    """A model version the flywheel can serve, with what the turn and the monitoring agent need to know about it."""

    version: str
    model: Any
    trained_on: list[int] = field(default_factory=list)
    kind: str = "initial"  # initial | drift | refit | window | reuse | rollback
    change_point: int | None = None
    fast: bool = False  # trained on little post-change data: a refit is due once a full window exists
    expected: dict[str, Any] = field(default_factory=dict)  # {"accuracy", "rows"} on held-out data
    replaced: str | None = None  # the version this one took over from (the rollback target)
    family: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    profile: ReferenceProfile | None = None
    calibration: dict[str, Any] | None = None  # held-out calibration of predict_proba (performance estimation)

    def meta(self) -> dict[str, Any]:
        """The JSON-small part that a registry keeps in tags."""
        return {"trained_on": list(self.trained_on), "kind": self.kind, "change_point": self.change_point,
                "fast": self.fast, "replaced": self.replaced, "expected": self.expected}

    def describe(self) -> dict[str, Any]:
        trained = [min(self.trained_on), max(self.trained_on)] if self.trained_on else []
        return {"version": self.version, "trained_on": trained, "kind": self.kind,
                "change_point": self.change_point, "fast": self.fast, "expected": self.expected,
                "replaced": self.replaced, "family": self.family, "params": self.params}


class StoreError(RuntimeError):
    """The store cannot do what was asked (no such version, registry unreachable); nothing was changed."""


class ModelStore:
    """Versions, the champion and earlier champions; subclasses keep them somewhere."""

    def champion(self) -> ModelEntry | None:
        raise NotImplementedError

    def earlier(self) -> list[ModelEntry]:
        """Earlier champions, newest first, at most :data:`EARLIER_KEPT`, never the current champion."""
        raise NotImplementedError

    def register(self, entry: ModelEntry, *, features: pd.DataFrame | None, run_key: str | None = None,
                 lineage: dict[str, str] | None = None) -> ModelEntry:
        """Store a new version of ``entry.model`` (``entry.version`` is ignored) and return it with its version.
        ``features`` is a sample of the training features (the registry infers the model's signature from it);
        None for a model that takes the inputs of the version it replaces (a prior correction)."""
        raise NotImplementedError

    def promote(self, entry: ModelEntry, reason: str) -> dict[str, Any]:
        """Make ``entry`` the champion; the old champion becomes the rollback target. Returns the promotion record."""
        raise NotImplementedError

    def rollback(self, version: str, reason: str) -> dict[str, Any]:
        raise NotImplementedError

    def get(self, version: str) -> ModelEntry | None:
        champion = self.champion()
        if champion is not None and champion.version == version:
            return champion
        return next((e for e in self.earlier() if e.version == version), None)


class MemoryStore(ModelStore):
    """Versions in memory, numbered 1, 2, ... like a registry's."""

    def __init__(self) -> None:
        self.versions: dict[str, ModelEntry] = {}
        self._champion: str | None = None
        self._earlier: list[str] = []
        self.history: list[dict[str, Any]] = []

    def champion(self) -> ModelEntry | None:
        return self.versions.get(self._champion) if self._champion else None

    def earlier(self) -> list[ModelEntry]:
        return [self.versions[v] for v in self._earlier]

    def register(self, entry: ModelEntry, *, features: pd.DataFrame | None, run_key: str | None = None,
                 lineage: dict[str, str] | None = None) -> ModelEntry:
        entry.version = str(len(self.versions) + 1)
        self.versions[entry.version] = entry
        return entry

    def _switch(self, version: str, action: str, reason: str) -> dict[str, Any]:
        old = self._champion
        if old is not None and old != version:
            self._earlier = [old, *[v for v in self._earlier if v not in (old, version)]][:EARLIER_KEPT]
        self._earlier = [v for v in self._earlier if v != version]
        self._champion = version
        record = {"action": action, "from_version": old, "to_version": version,
                  "previous_version": self._earlier[0] if self._earlier else None, "reason": reason}
        self.history.append(record)
        return record

    def promote(self, entry: ModelEntry, reason: str) -> dict[str, Any]:
        if entry.version not in self.versions:
            raise StoreError(f"version {entry.version} was never registered")
        self.versions[entry.version] = entry
        return self._switch(entry.version, "promote", reason)

    def rollback(self, version: str, reason: str) -> dict[str, Any]:
        if version not in self.versions:
            raise StoreError(f"no version {version} to roll back to")
        return self._switch(version, "rollback", reason)


class MlflowStore(ModelStore):
    """Versions in an MLflow model registry (aliases ``champion`` / ``previous``, metadata in version tags).

    :param model_name: the registered model.
    :param tracking_uri: MLflow tracking (and registry) URI; resolve it with ``airflow_agentic.config``.
    :param profile_dir: where each version's drift profile is written (its URL goes into the ``agentic.profile`` tag);
        None keeps profiles out of the registry (the monitoring step then checks performance only).
    :param experiment_name: the experiment holding the runs that log the versions (default ``model_name``).
    """

    def __init__(self, model_name: str, tracking_uri: str, *, profile_dir: str | None = None,
                 experiment_name: str | None = None):
        from airflow_agentic.models.registry import ModelRegistry

        self.model_name = model_name
        self.tracking_uri = tracking_uri
        self.profile_dir = profile_dir.rstrip("/") if profile_dir else None
        self.experiment_name = experiment_name or model_name
        self.registry = ModelRegistry(tracking_uri)
        self.client = self.registry.client
        self._loaded: dict[str, ModelEntry] = {}

    # -- reading --------------------------------------------------------------------------------------------------
    def _aliases(self) -> dict[str, str]:
        from mlflow.exceptions import MlflowException

        from airflow_agentic.models.registry import RegistryError

        try:
            return self.registry.aliases(self.model_name)
        except (MlflowException, RegistryError) as exc:
            # The registry wraps MLflow's error; a model not registered yet has no aliases (a fresh install).
            cause = exc.__cause__ if isinstance(exc, RegistryError) else exc
            if isinstance(cause, MlflowException) and (
                    "RESOURCE_DOES_NOT_EXIST" in str(getattr(cause, "error_code", ""))
                    or "not found" in str(cause).lower()):
                return {}
            raise

    def load(self, version: str) -> ModelEntry:
        """A registered version with its model (the sklearn flavour, for probabilities) and metadata; cached."""
        if version in self._loaded:
            return self._loaded[version]
        import mlflow.sklearn

        mv = self.client.get_model_version(self.model_name, version)
        tags = mv.tags or {}
        model = mlflow.sklearn.load_model(f"models:/{self.model_name}/{version}")
        meta = json.loads(tags.get(TURN_TAG) or "{}")
        expected = dict(meta.get("expected") or {})
        if not expected and tags.get(EXPECTED_ACCURACY_TAG):
            expected = {"accuracy": float(tags[EXPECTED_ACCURACY_TAG]), "rows": int(tags.get(EXPECTED_ROWS_TAG) or 0)}
        entry = ModelEntry(version=str(version), model=model, trained_on=list(meta.get("trained_on") or []),
                           kind=meta.get("kind") or "initial", change_point=meta.get("change_point"),
                           fast=bool(meta.get("fast")), expected=expected, replaced=meta.get("replaced"),
                           family=tags.get(f"{TAG}family"), params=json.loads(tags.get(f"{TAG}params") or "{}"),
                           profile=self._profile(tags.get(PROFILE_TAG)),
                           calibration=json.loads(tags["agentic.calibration"]) if tags.get("agentic.calibration")
                           else None)
        self._loaded[entry.version] = entry
        return entry

    @staticmethod
    def _profile(location: str | None) -> ReferenceProfile | None:
        if not location:
            return None
        from airflow_agentic.data import io as dio
        from airflow_agentic.drift.profile import ReferenceProfile

        return ReferenceProfile.from_bytes(dio.read_bytes(location))

    def champion(self) -> ModelEntry | None:
        version = self._aliases().get("champion")
        return self.load(version) if version else None

    def earlier(self) -> list[ModelEntry]:
        from airflow_agentic.models.registry import PROMOTION_HISTORY_TAG, ROLLBACK_HISTORY_TAG

        aliases = self._aliases()
        if not aliases:
            return []
        tags = self.registry.tags(self.model_name)
        moves = json.loads(tags.get(PROMOTION_HISTORY_TAG, "[]")) + json.loads(tags.get(ROLLBACK_HISTORY_TAG, "[]"))
        moves.sort(key=lambda m: m.get("at") or "")
        order: list[str] = []
        if aliases.get("previous"):
            order.append(aliases["previous"])
        for move in reversed(moves):
            for version in (move.get("from"), move.get("to")):
                if version and version not in order:
                    order.append(str(version))
        champion = aliases.get("champion")
        return [self.load(v) for v in order if v != champion][:EARLIER_KEPT]

    # -- writing --------------------------------------------------------------------------------------------------
    def register(self, entry: ModelEntry, *, features: pd.DataFrame | None, run_key: str | None = None,
                 lineage: dict[str, str] | None = None) -> ModelEntry:
        """Log the fitted model with a signature in a run of the experiment and register it as a new version with
        the alias ``challenger``. Idempotent per ``run_key``: a retried turn finds the version it registered."""
        import time

        import mlflow
        import mlflow.sklearn
        from mlflow.models import infer_signature

        from airflow_agentic.agents.training import ensure_parent_run, safe_key
        from airflow_agentic.config import mlflow_tracking
        from airflow_agentic.models.registry import CHALLENGER
        from airflow_agentic.models.training import registered_from_run, skops_trusted_types

        run_key = safe_key(run_key or f"{self.model_name}-{time.time_ns()}")
        lineage = {k: str(v) for k, v in (lineage or {}).items() if v not in ("", None)}
        experiment_id, run_id = ensure_parent_run(self.client, self.experiment_name, run_key,
                                                  run_name=f"turn-{self.model_name}",
                                                  tags={f"{TAG}{k}": v for k, v in lineage.items()})
        version = registered_from_run(self.client, self.model_name, run_id)
        if version is None:
            with mlflow_tracking(self.tracking_uri):
                if features is not None:
                    signature = infer_signature(features.head(200), entry.model.predict(features.head(200)))
                else:  # the same inputs as the version it replaces
                    signature = mlflow.models.get_model_info(f"models:/{self.model_name}/{entry.replaced}").signature
                mlflow.set_experiment(experiment_id=experiment_id)  # start_run checks the run against it
                with mlflow.start_run(run_id=run_id):
                    mlflow.log_params({"family": entry.family,
                                       **{f"param.{k}": v for k, v in entry.params.items()}})
                    if entry.expected.get("accuracy") is not None:
                        mlflow.log_metric("expected_accuracy", float(entry.expected["accuracy"]))
                    info = mlflow.sklearn.log_model(
                        entry.model, name="model", signature=signature,
                        input_example=None if features is None else features.head(5),
                        registered_model_name=self.model_name,
                        pip_requirements=mlflow.sklearn.get_default_pip_requirements(include_cloudpickle=True),
                        skops_trusted_types=skops_trusted_types(entry.model))
            version = str(info.registered_model_version)
        else:
            log.info("version %s of %s was already registered by turn %s: reusing it", version, self.model_name,
                     run_key)
        entry.version = str(version)
        tags = {TURN_TAG: json.dumps(entry.meta()), f"{TAG}family": entry.family or "",
                f"{TAG}params": json.dumps(entry.params, sort_keys=True, default=str), f"{TAG}run_key": run_key,
                **{f"{TAG}{k}": v for k, v in lineage.items()}}
        if entry.expected.get("accuracy") is not None:
            tags[EXPECTED_ACCURACY_TAG] = f"{float(entry.expected['accuracy']):.6f}"
            tags[EXPECTED_ROWS_TAG] = str(int(entry.expected.get("rows") or 0))
        if entry.calibration:
            tags["agentic.calibration"] = json.dumps(entry.calibration)
        if entry.profile is not None and self.profile_dir:
            from airflow_agentic.data import io as dio

            location = f"{self.profile_dir}/{self.model_name}-v{entry.version}.npz"
            dio.write_bytes_atomic(location, entry.profile.to_bytes())
            tags[PROFILE_TAG] = location
        for key, value in tags.items():
            self.client.set_model_version_tag(self.model_name, entry.version, key, str(value)[:5000])
        self.client.set_registered_model_alias(self.model_name, CHALLENGER, entry.version)
        self._loaded[entry.version] = entry
        return entry

    def promote(self, entry: ModelEntry, reason: str) -> dict[str, Any]:
        from airflow_agentic.config import mlflow_tracking

        with mlflow_tracking(self.tracking_uri):
            record = self.registry.promote(self.model_name, entry.version, reason=reason)
        if entry.kind == "reuse":  # the version's own tags describe its first life; the reuse is in the history
            self._loaded.pop(entry.version, None)
        return record.to_dict()

    def rollback(self, version: str, reason: str) -> dict[str, Any]:
        """Champion back to ``version``: the registry's rollback when it is ``previous``, else a promotion of it."""
        from airflow_agentic.config import mlflow_tracking

        aliases = self._aliases()
        with mlflow_tracking(self.tracking_uri):
            if aliases.get("previous") == str(version):
                return self.registry.rollback(self.model_name, reason).to_dict()
            return self.registry.promote(self.model_name, str(version), reason=f"rollback: {reason}").to_dict()


__all__ = ["EARLIER_KEPT", "EXPECTED_ACCURACY_TAG", "EXPECTED_ROWS_TAG", "MemoryStore", "MlflowStore", "ModelEntry",
           "ModelStore", "PROFILE_TAG", "StoreError", "TURN_TAG"]
