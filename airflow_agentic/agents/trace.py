"""The decision trace: one record per step, readable in the task log and structured in XCom and the UI."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from airflow_agentic.agents.decision import bound

# What one argument set or one result may weigh in the trace (and so in XCom, the UI and the planner's history).
TRACE_VALUE_CHARS = 4000
TRUNCATED = "__truncated__"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _json_size(value: Any) -> int:
    try:
        return len(json.dumps(value, default=str))
    except (TypeError, ValueError):
        return len(str(value))


def bounded(value: Any, max_chars: int = TRACE_VALUE_CHARS) -> Any:
    """``value`` itself when small; else a shrunk copy that says it was cut and how big the original was.

    A dict stays a dict (its keys cut down, plus ``"__truncated__": {"full_chars": N}``); anything else becomes
    ``{"__truncated__": {...}, "preview": ...}``. Already bounded values pass unchanged.
    """
    if isinstance(value, dict) and TRUNCATED in value:
        return value
    size = _json_size(value)
    if size <= max_chars:
        return value
    marker = {"full_chars": size, "kept_chars": max_chars}
    preview = bound(value, max_chars=max_chars // 2, max_items=20, max_str=200, depth=4)
    if isinstance(preview, dict):
        return {TRUNCATED: marker, **preview}
    return {TRUNCATED: marker, "preview": preview}


# ---------------------------------------------------------------------------------------------------- secrets
REDACTED = "***"
# Query keys whose values are credentials (signed URLs, webhooks, API keys in the query string).
_SECRET_KEY = re.compile(r"(?i)(token|key|secret|sig|signature|pass|pwd|auth|credential|session|code)")
# Hosts whose URL path *is* the secret (incoming webhooks).
_SECRET_PATH_HOSTS = ("hooks.slack.com", "discord.com", "discordapp.com", "webhook.office.com",
                      "outlook.office.com", "chat.googleapis.com", "api.telegram.org")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_TOKENS = re.compile(
    r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}"  # Authorization headers
    r"|\bsk-[A-Za-z0-9_-]{8,}"  # OpenAI-style API keys
    r"|\bxox[abposr]-[A-Za-z0-9-]{8,}"  # Slack tokens
    r"|\bgh[pousr]_[A-Za-z0-9]{16,}"  # GitHub tokens
    r"|\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"  # AWS access key ids
)


_TOKEN_CHARS = re.compile(r"^[A-Za-z0-9_-]{24,}$")


def _secret_segment(segment: str) -> bool:
    """A path segment or query value that looks like a random credential: 24+ token characters mixing upper case,
    lower case and digits. File names (a dot), dates and lower-case hex ids (run ids, UUIDs) stay readable."""
    return bool(_TOKEN_CHARS.match(segment)) and any(c.isdigit() for c in segment) and any(
        c.isupper() for c in segment) and any(c.islower() for c in segment)


def redact_url(url: str) -> str:
    """The URL with its credentials masked: the password, every query value whose key names a credential,
    webhook paths (Slack, Teams, Discord, ...) and path segments that look like tokens. Scheme, host, port and
    the ordinary path stay readable."""
    try:
        parts = urlsplit(str(url))
        port = parts.port
    except ValueError:
        return REDACTED
    if not parts.scheme or not parts.netloc:
        return _TOKENS.sub(REDACTED, str(url))
    host = parts.hostname or ""
    netloc = host if ":" not in host else f"[{host}]"
    if port is not None:
        netloc += f":{port}"
    if parts.username:
        netloc = f"{parts.username if parts.password is None else parts.username + ':' + REDACTED}@{netloc}"
    segments = parts.path.split("/")
    webhook = any(host == h or host.endswith("." + h) for h in _SECRET_PATH_HOSTS)
    # on a webhook host everything after the first segment (services/, api/webhooks/, ...) is the credential
    keep = 2 if webhook else len(segments)
    path = "/".join(seg if (i < keep and not _secret_segment(seg)) or not seg else REDACTED
                    for i, seg in enumerate(segments))
    query = urlencode([(k, REDACTED if _SECRET_KEY.search(k) or _secret_segment(v) else v)
                       for k, v in parse_qsl(parts.query, keep_blank_values=True)], safe="*")
    fragment = REDACTED if parts.fragment else ""
    return urlunsplit((parts.scheme, netloc, path, query, fragment))


def redact(text: Any, secrets: Iterable[str | None] = ()) -> str:
    """``str(text)`` with the given secrets, credentials inside URLs and well-known token shapes masked.

    Use it on every message, log line or repr built from settings, URLs or an exception about a request."""
    out = str(text)
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        out = out.replace(secret, REDACTED)
    out = _URL.sub(lambda m: redact_url(m.group(0)), out)
    return _TOKENS.sub(REDACTED, out)


@dataclass
class TraceStep:
    step: int
    agent: str
    planner: str
    tool: str
    arguments: dict[str, Any] = field(default_factory=dict)
    rationale: str = ""
    model: str | None = None
    prompt_hash: str | None = None
    verdict: str = ""  # allowed | refused | needs_approval
    verdict_reason: str = ""
    approval: dict[str, Any] | None = None  # {approved, by, at, timed_out}
    status: str = ""  # ok | error | refused | rejected | finished
    result: Any = None  # summary only, bounded
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_calls: int = 0
    latency_ms: float = 0.0
    replayed: bool = False
    notes: list[str] = field(default_factory=list)
    observation: Any = None  # a short summary of what the agent saw before this decision (for people, not replay)
    at: str = field(default_factory=now_iso)

    def __post_init__(self) -> None:
        self.arguments = bounded(self.arguments)
        self.result = bounded(self.result)

    def to_dict(self) -> dict[str, Any]:
        # the result is often set after construction: bound again on the way out (a no-op when already small)
        self.arguments, self.result = bounded(self.arguments), bounded(self.result)
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TraceStep:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def compact(self) -> dict[str, Any]:
        """What the planner sees of past steps."""
        out = {"step": self.step, "tool": self.tool, "arguments": self.arguments, "status": self.status}
        if self.verdict_reason:
            out["guard"] = self.verdict_reason
        if self.error:
            out["error"] = self.error
        if self.result is not None:
            out["result"] = self.result
        if self.approval:
            out["approval"] = {k: self.approval.get(k) for k in ("approved", "timed_out", "by")}
        return out

    def line(self) -> str:
        """One readable line for the task log."""
        args = json.dumps(self.arguments, default=str, sort_keys=True)
        if len(args) > 160:
            args = args[:157] + "..."
        parts = [f"[{self.agent} step {self.step}] {self.planner}"]
        if self.model:
            parts[0] += f"({self.model})"
        parts.append(f"-> {self.tool}{args if self.arguments else ''}")
        parts.append(f"guard={self.verdict}")
        if self.approval:
            parts.append("approved" if self.approval.get("approved") else "rejected")
        parts.append(f"status={self.status}")
        if self.replayed:
            parts.append("(replayed)")
        if self.llm_calls:
            parts.append(f"llm_calls={self.llm_calls} tokens={self.prompt_tokens + self.completion_tokens}")
        text = " ".join(parts)
        if self.rationale:
            text += f" | why: {self.rationale}"
        if self.verdict_reason and self.verdict != "allowed":
            text += f" | guard: {self.verdict_reason}"
        if self.error:
            text += f" | error: {self.error}"
        return text


@dataclass
class AgentRun:
    """The outcome of one agent loop: status, steps, usage and the agent's own result."""

    agent: str
    goal: str
    status: str  # finished | step_limit | stopped | awaiting_approval
    steps: list[TraceStep]
    result: dict[str, Any] = field(default_factory=dict)
    planner: dict[str, Any] = field(default_factory=dict)
    usage: dict[str, Any] = field(default_factory=dict)
    fallback_reason: str | None = None
    started_at: str = field(default_factory=now_iso)
    ended_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["steps"] = [s.to_dict() for s in self.steps]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AgentRun:
        d = dict(d)
        d["steps"] = [TraceStep.from_dict(s) for s in d.get("steps", [])]
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def actions(self) -> list[str]:
        """Tools that actually ran, in order."""
        return [s.tool for s in self.steps if s.status == "ok"]
