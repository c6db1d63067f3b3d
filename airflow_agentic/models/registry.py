"""Promotion and rollback through registered-model aliases only: `champion`, `challenger`, `previous`.

Each step is one alias call, ordered so that a registry failing between any two calls leaves a valid state (the old
champion or the new one, never none), and so that calling again finishes the job:

promote(V):   previous := champion   ->  champion := V (the switch, one atomic alias move)  ->  delete challenger
              ->  append history. A retry that finds champion == V only finishes the tail.
rollback():   pending-rollback tag (remembers from/to)  ->  champion := previous  ->  delete previous
              ->  append history  ->  delete the pending tag. A retry resumes from the pending tag.

MLflow keeps no alias history (mlflow/mlflow#2169), so history is a JSON list in registered-model tags.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS = "previous"
ROLLBACK_HISTORY_TAG = "agentic.rollback_history"
PROMOTION_HISTORY_TAG = "agentic.promotion_history"
PENDING_ROLLBACK_TAG = "agentic.pending_rollback"
# MLflow limits tag values (5,000 characters on the SQL store): keep the newest entries below that.
HISTORY_MAX_CHARS = 4500


class RegistryError(RuntimeError):
    """A registry call failed or a precondition does not hold; `step` names the call, `aliases` the last known state."""

    def __init__(self, message: str, *, step: str | None = None, aliases: dict[str, str] | None = None):
        super().__init__(message)
        self.step = step
        self.aliases = aliases or {}


@dataclass
class PromotionRecord:
    model_name: str
    action: str  # "promote" | "rollback"
    from_version: str | None  # champion before
    to_version: str  # champion after
    previous_version: str | None  # alias `previous` after
    reason: str = ""
    at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    steps: list[str] = field(default_factory=list)
    already_done: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PromotionRecord:
        return cls(**data)


def _is_registry_failure(exc: BaseException) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        import requests

        request_errors: tuple[type[BaseException], ...] = (requests.exceptions.RequestException,)
    except ImportError:  # pragma: no cover
        request_errors = ()
    return isinstance(exc, (MlflowException, ConnectionError, OSError, TimeoutError, *request_errors))


class ModelRegistry:
    """Alias-based promotion on an MLflow model registry. Retries are the caller's: every method is idempotent.

    The MLflow client retries failed HTTP calls itself (MLFLOW_HTTP_REQUEST_MAX_RETRIES, default 7, with backoff);
    lower it to fail fast when the registry is down.
    """

    def __init__(self, tracking_uri: str | None = None, registry_uri: str | None = None,
                 client: MlflowClient | None = None):
        if client is None:
            from mlflow import MlflowClient

            client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri or tracking_uri)
        self.client = client
        self.tracking_uri = tracking_uri  # None: the process-wide tracking URI

    # -- plumbing -------------------------------------------------------------------------------------------------
    def _call(self, step: str, fn: Callable[..., Any], *args: Any, aliases: dict[str, str] | None = None,
              **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if isinstance(exc, RegistryError) or not _is_registry_failure(exc):
                raise
            raise RegistryError(f"registry call '{step}' failed: {exc.__class__.__name__}: {exc}. "
                                f"Aliases before the call: {aliases or {}}; calling again finishes the job.",
                                step=step, aliases=aliases) from exc

    def aliases(self, name: str) -> dict[str, str]:
        model = self._call("get_registered_model", self.client.get_registered_model, name)
        return {alias: str(version) for alias, version in (model.aliases or {}).items()}

    def tags(self, name: str) -> dict[str, str]:
        return dict(self._call("get_registered_model", self.client.get_registered_model, name).tags or {})

    def history(self, name: str, kind: str = "rollback") -> list[dict[str, Any]]:
        tag = ROLLBACK_HISTORY_TAG if kind == "rollback" else PROMOTION_HISTORY_TAG
        return json.loads(self.tags(name).get(tag, "[]"))

    def _append_history(self, name: str, tag: str, entry: dict[str, Any], aliases: dict[str, str]) -> bool:
        entries = json.loads(self.tags(name).get(tag, "[]"))
        if entries and entries[-1] == entry:
            return False
        entries.append(entry)
        while len(json.dumps(entries)) > HISTORY_MAX_CHARS and len(entries) > 1:
            entries.pop(0)
        self._call(f"set_registered_model_tag {tag}", self.client.set_registered_model_tag, name, tag,
                   json.dumps(entries), aliases=aliases)
        return True

    def check_version(self, name: str, version: str, *, require_signature: bool = True,
                      check_load: bool = True) -> None:
        """Raise RegistryError when the version is missing, has no signature, or does not load.

        The artifacts are fetched through this registry's tracking URI, so the check sees what promotion will serve.
        """
        import tempfile

        import mlflow
        from mlflow.models import Model

        self._call("get_model_version", self.client.get_model_version, name, version)
        uri = f"models:/{name}/{version}"
        with tempfile.TemporaryDirectory(prefix="agentic-check-") as tmp:
            local = self._call("download model", mlflow.artifacts.download_artifacts, artifact_uri=uri,
                               dst_path=tmp, tracking_uri=self.tracking_uri)
            if require_signature:
                try:
                    signature = Model.load(local).signature
                except Exception as exc:  # noqa: BLE001 - an unreadable MLmodel blocks the promotion
                    raise RegistryError(f"{name} version {version} has no readable MLmodel ({exc}); champion "
                                        f"untouched", step="check_signature") from exc
                if signature is None or signature.inputs is None:
                    raise RegistryError(f"{name} version {version} has no input signature: log it with "
                                        f"signature=infer_signature(...); champion untouched",
                                        step="check_signature")
            if check_load:
                try:
                    mlflow.pyfunc.load_model(local)
                except Exception as exc:  # noqa: BLE001 - any load failure blocks the promotion
                    raise RegistryError(f"{name} version {version} failed to load ({exc.__class__.__name__}: "
                                        f"{exc}); champion untouched", step="load_model") from exc

    # -- promote --------------------------------------------------------------------------------------------------
    def promote(self, name: str, version: str | int | None = None, *, reason: str = "",
                require_signature: bool = True, check_load: bool = True) -> PromotionRecord:
        """Make `version` (default: the challenger) the champion; the old champion becomes `previous`."""
        state = self.aliases(name)
        target = str(version) if version is not None else state.get(CHALLENGER)
        if target is None:
            raise RegistryError(f"{name} has no '{CHALLENGER}' alias and no version was given", aliases=state)
        old_champion = state.get(CHAMPION)
        steps: list[str] = []
        already_champion = old_champion == target
        if not already_champion:
            self.check_version(name, target, require_signature=require_signature, check_load=check_load)
            if old_champion is not None and state.get(PREVIOUS) != old_champion:
                self._call("set previous", self.client.set_registered_model_alias, name, PREVIOUS, old_champion,
                           aliases=state)
                state[PREVIOUS] = old_champion
                steps.append(f"previous -> {old_champion}")
            self._call("set champion", self.client.set_registered_model_alias, name, CHAMPION, target,
                       aliases=state)
            state[CHAMPION] = target
            steps.append(f"champion -> {target}")
        if state.get(CHALLENGER) == target:
            self._call("delete challenger", self.client.delete_registered_model_alias, name, CHALLENGER,
                       aliases=state)
            state.pop(CHALLENGER)
            steps.append("challenger deleted")
        from_version = old_champion if not already_champion else state.get(PREVIOUS)
        entry = {"from": from_version, "to": target}
        history = json.loads(self.tags(name).get(PROMOTION_HISTORY_TAG, "[]"))
        # A retry that finds the switch done records it only if the first attempt failed before recording.
        if not already_champion or not history or {k: history[-1].get(k) for k in ("from", "to")} != entry:
            record_entry = {**entry, "reason": reason,
                            "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            self._append_history(name, PROMOTION_HISTORY_TAG, record_entry, state)
            steps.append("history appended")
        return PromotionRecord(name, "promote", from_version, target, state.get(PREVIOUS), reason, steps=steps,
                               already_done=already_champion and not steps)

    # -- rollback -------------------------------------------------------------------------------------------------
    def rollback(self, name: str, reason: str = "") -> PromotionRecord:
        """Champion back to `previous`; `previous` is cleared so a second rollback cannot flip back."""
        model_tags = self.tags(name)
        state = self.aliases(name)
        steps: list[str] = []
        pending = json.loads(model_tags[PENDING_ROLLBACK_TAG]) if PENDING_ROLLBACK_TAG in model_tags else None
        if pending is None:
            champion, previous = state.get(CHAMPION), state.get(PREVIOUS)
            if previous is None:
                history = json.loads(model_tags.get(ROLLBACK_HISTORY_TAG, "[]"))
                if history and history[-1].get("to") == champion:
                    last = history[-1]
                    return PromotionRecord(name, "rollback", last["from"], champion, None, last.get("reason", ""),
                                           at=last.get("at", ""), already_done=True)
                raise RegistryError(f"{name} has no '{PREVIOUS}' alias: nothing to roll back to", aliases=state)
            if previous == champion:
                raise RegistryError(f"{name}: '{PREVIOUS}' and '{CHAMPION}' are both version {champion} (an "
                                    f"unfinished promotion?); promote again or set '{PREVIOUS}' by hand",
                                    aliases=state)
            pending = {"from": champion, "to": previous, "reason": reason,
                       "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            self._call("set pending rollback", self.client.set_registered_model_tag, name, PENDING_ROLLBACK_TAG,
                       json.dumps(pending), aliases=state)
            steps.append("pending rollback recorded")
        target = pending["to"]
        if state.get(CHAMPION) != target:
            self._call("set champion", self.client.set_registered_model_alias, name, CHAMPION, target,
                       aliases=state)
            state[CHAMPION] = target
            steps.append(f"champion -> {target}")
        if state.get(PREVIOUS) is not None:
            self._call("delete previous", self.client.delete_registered_model_alias, name, PREVIOUS, aliases=state)
            state.pop(PREVIOUS)
            steps.append("previous deleted")
        if pending.get("from"):
            self._call("tag rolled-back version", self.client.set_model_version_tag, name, pending["from"],
                       "agentic.rolled_back_at", pending["at"], aliases=state)
        if self._append_history(name, ROLLBACK_HISTORY_TAG, pending, state):
            steps.append("history appended")
        self._call("delete pending rollback", self.client.delete_registered_model_tag, name, PENDING_ROLLBACK_TAG,
                   aliases=state)
        return PromotionRecord(name, "rollback", pending["from"], target, None, pending.get("reason", reason),
                               at=pending["at"], steps=steps)


def promote(name: str, version: str | int | None = None, *, reason: str = "", tracking_uri: str | None = None,
            **kwargs: Any) -> PromotionRecord:
    return ModelRegistry(tracking_uri).promote(name, version, reason=reason, **kwargs)


def rollback(name: str, reason: str = "", *, tracking_uri: str | None = None) -> PromotionRecord:
    return ModelRegistry(tracking_uri).rollback(name, reason)
