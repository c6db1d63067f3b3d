"""``WebhookNotifier``: post a drift / agent summary to a Slack-style webhook or a PagerDuty Events v2 endpoint.

Use it anywhere Airflow takes a notifier (``on_failure_callback=WebhookNotifier(...)``) or hand it to
``MonitoringAgentOperator(notifiers=[...])``, which calls it with the agent's alert in ``context["agentic_event"]``.

What the message says, first match wins: ``text`` (templated); ``report`` (templated: a ``DriftReport`` dict, a
``MonitoringDecision`` dict, or their JSON); ``context["agentic_event"]``; else the task's or DAG's state.

Where it goes: ``url`` / ``routing_key`` given directly, or an Airflow connection ``conn_id`` (type ``http``): the
URL is ``host`` when it holds a full URL, else ``schema://host:port`` + ``extra.endpoint``; the PagerDuty routing key
is the connection's password (or ``extra.routing_key``); ``extra.style`` may set the style.

Secrets: a webhook URL carries one (Slack's path) and so is a routing key. A failed post raises ``WebhookError``
naming the host and the status only, never chained to the HTTP client's error (whose message holds the URL); both
are registered with Airflow's secrets masker, so no task log line shows them either.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier

if TYPE_CHECKING:
    from airflow.sdk import Context

STYLES = ("slack", "pagerduty")
PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
PAGERDUTY_SEVERITIES = ("critical", "error", "warning", "info")
EVENT_CONTEXT_KEY = "agentic_event"


class WebhookError(RuntimeError):
    """A webhook could not be reached or refused the message. The message names the host only: webhook URLs carry
    their secret in the path (Slack) and PagerDuty's routing key is one."""


_URL = re.compile(r"([a-z][a-z0-9+.-]*://)(?:[^@/\s'\"]*@)?([^/\s'\"?#]+)[^\s'\"]*", re.IGNORECASE)


def redact(text: str, *secrets: str | None) -> str:
    """``text`` with every given secret and every URL's user info, path and query replaced by ``***``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return _URL.sub(lambda m: f"{m.group(1)}{m.group(2)}/***" if m.group(0) != m.group(1) + m.group(2)
                    else m.group(0), text)


def _as_dict(value: Any) -> dict[str, Any] | None:
    if isinstance(value, str) and value.strip().startswith("{"):
        value = json.loads(value)
    return value if isinstance(value, dict) else None


def _drift_details(report: dict[str, Any]) -> dict[str, Any]:
    return {"detected": bool(report.get("detected")), "score": report.get("score"),
            "drifted_columns": list(report.get("drifted_columns") or [])[:20], "max_effect": report.get("max_effect"),
            "n_ref": report.get("n_ref"), "n_cur": report.get("n_cur")}


def describe(obj: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(one-line summary, small details dict) of a drift report, a monitoring decision or an agent event."""
    if "decision" in obj and isinstance(obj["decision"], dict):
        obj = obj["decision"]
    if "columns" in obj and "detected" in obj:
        from airflow_agentic.drift.report import DriftReport

        return DriftReport.from_dict(obj).summary(), _drift_details(obj)
    if "action" in obj and "reasons" in obj:
        reasons = list(obj.get("reasons") or [])
        details = {"action": obj["action"], "actions": obj.get("actions"), "batch": obj.get("batch"),
                   "retrain": obj.get("retrain"), "rollback_to": obj.get("rollback_to"), "reasons": reasons[:5]}
        drift = (obj.get("signals") or {}).get("drift")
        if drift:
            details["drift"] = drift
        return f"monitoring decision {obj['action']}: {reasons[0] if reasons else 'no reason given'}", details
    if "kind" in obj and "payload" in obj:  # an agent callback, as MonitoringAgentOperator passes it
        payload = obj.get("payload") or {}
        what = payload.get("message") or payload.get("reason") or json.dumps(payload, default=str)[:300]
        details = {"kind": obj["kind"], **{k: v for k, v in payload.items() if k != "message"}}
        if obj.get("drift"):
            details["drift"] = _drift_details(obj["drift"])
        return f"{obj['kind']}: {what}", details
    text = obj.get("message") or obj.get("text") or json.dumps(obj, default=str)[:300]
    return str(text), dict(obj)


class WebhookNotifier(BaseNotifier):
    """Post a summary to a webhook.

    :param conn_id: an ``http`` connection holding the URL (and the PagerDuty routing key as password).
    :param url: the webhook URL (overrides the connection's).
    :param style: ``slack`` (``{"text": ...}``, default) or ``pagerduty`` (Events API v2 ``trigger``).
    :param routing_key: PagerDuty integration key (overrides the connection's).
    :param text: the message (templated); default a summary of ``report`` or of the agent event.
    :param report: a drift report or monitoring decision, dict or JSON (templated, e.g. from XCom).
    :param severity: PagerDuty severity (``critical``, ``error``, ``warning``, ``info``).
    :param source: PagerDuty ``source``; ``dedup_key``: PagerDuty de-duplication key (templated).
    :param timeout: seconds per request.
    """

    template_fields: Sequence[str] = ("url", "text", "report", "routing_key", "severity", "dedup_key")

    def __init__(self, *, conn_id: str | None = None, url: str | None = None, style: str | None = None,
                 routing_key: str | None = None, text: str | None = None, report: Any = None,
                 severity: str = "warning", source: str = "airflow-agentic", dedup_key: str | None = None,
                 timeout: float = 10.0) -> None:
        super().__init__()
        if style is not None and style not in STYLES:
            raise ValueError(f"style must be one of {STYLES}, not {style!r}")
        if not conn_id and not url and style != "pagerduty":
            raise ValueError("give a conn_id or a url")
        self.conn_id = conn_id
        self.url = url
        self.style = style
        self.routing_key = routing_key
        self.text = text
        self.report = report
        self.severity = severity
        self.source = source
        self.dedup_key = dedup_key
        self.timeout = float(timeout)

    # ------------------------------------------------------------------ where
    def _target(self) -> tuple[str, str, str | None]:
        """(url, style, routing key), direct arguments first, then the connection."""
        url, style, key = self.url, self.style, self.routing_key
        if self.conn_id:
            from airflow.sdk import BaseHook

            conn = BaseHook.get_connection(self.conn_id)
            extra = conn.extra_dejson or {}
            style = style or extra.get("style")
            key = key or conn.password or extra.get("routing_key")
            if not url and conn.host:
                if "://" in conn.host:
                    url = conn.host
                else:
                    url = f"{conn.schema or 'https'}://{conn.host}{f':{conn.port}' if conn.port else ''}"
                endpoint = str(extra.get("endpoint") or "")
                if endpoint:
                    url = url.rstrip("/") + "/" + endpoint.lstrip("/")
        style = style or "slack"
        if style not in STYLES:
            raise ValueError(f"style must be one of {STYLES}, not {style!r}")
        if style == "pagerduty":
            url = url or PAGERDUTY_URL
            if not key:
                raise ValueError("PagerDuty needs a routing key (routing_key= or the connection's password)")
        if not url:
            raise ValueError(f"no webhook URL: connection {self.conn_id!r} has no host and no url= was given")
        return url, style, key

    # ------------------------------------------------------------------ what
    def summary(self, context: Context) -> tuple[str, dict[str, Any]]:
        ti = context.get("ti") or context.get("task_instance")
        dag = context.get("dag")
        dag_id = getattr(ti, "dag_id", None) or getattr(dag, "dag_id", None)
        where = ".".join(str(p) for p in (dag_id, getattr(ti, "task_id", None)) if p)
        run_id = getattr(ti, "run_id", None) or getattr(context.get("dag_run"), "run_id", None)
        details: dict[str, Any] = {}
        obj = _as_dict(self.report) or _as_dict(context.get(EVENT_CONTEXT_KEY))
        if self.text:
            body = str(self.text)
            if obj:
                details = describe(obj)[1]
        elif obj:
            body, details = describe(obj)
        else:
            state = getattr(ti, "state", None) or getattr(context.get("dag_run"), "state", None)
            body = f"state {state}" if state else "notification"
            if context.get("exception"):
                body += f": {context['exception']}"
        prefix = f"[{where}{f' {run_id}' if run_id else ''}] " if where else ""
        details.update({k: v for k, v in (("dag_id", dag_id), ("task_id", getattr(ti, "task_id", None)),
                                          ("run_id", run_id)) if v})
        return prefix + body, details

    def body(self, context: Context) -> tuple[str, dict[str, Any]]:
        url, style, key = self._target()
        text, details = self.summary(context)
        if style == "slack":
            return url, {"text": text}
        severity = self.severity if self.severity in PAGERDUTY_SEVERITIES else "warning"
        kind = details.get("kind") or details.get("action") or ("drift" if "detected" in details else "agentic")
        event: dict[str, Any] = {
            "routing_key": key, "event_action": "trigger",
            "payload": {"summary": text[:1024], "source": self.source, "severity": severity,
                        "component": details.get("dag_id") or "airflow", "group": details.get("task_id"),
                        "class": kind, "custom_details": details},
        }
        if self.dedup_key:
            event["dedup_key"] = str(self.dedup_key)[:255]
        return url, event

    # ------------------------------------------------------------------ send
    def _secrets(self, url: str, key: str | None) -> list[str]:
        secrets = [url, key]
        try:
            import httpx

            parsed = httpx.URL(url)
            secrets += [str(parsed), parsed.path if len(parsed.path) > 1 else None, parsed.query.decode() or None]
        except Exception:  # noqa: BLE001 - an unparsable URL is redacted by the pattern in `redact`
            pass
        return [s for s in secrets if s]

    def _prepare(self, context: Context) -> tuple[str, dict[str, Any], list[str]]:
        url, body = self.body(context)
        secrets = self._secrets(url, body.get("routing_key"))
        try:  # Airflow's masker hides them in every task log line (httpx logs the URL of each request)
            from airflow.sdk.log import mask_secret

            for secret in secrets:
                mask_secret(secret)
        except Exception:  # noqa: BLE001 - masking is a safety net; the messages below are redacted anyway
            pass
        return url, body, secrets

    def _failed(self, exc: Exception, url: str, secrets: list[str]) -> WebhookError:
        import httpx

        status = f" ({exc.response.status_code})" if isinstance(exc, httpx.HTTPStatusError) else ""
        return WebhookError(f"{self.style or 'webhook'} notification to {httpx.URL(url).host} failed{status}: "
                            f"{redact(f'{type(exc).__name__}: {exc}', *secrets)}")

    def notify(self, context: Context) -> None:
        import httpx

        url, body, secrets = self._prepare(context)
        try:
            response = httpx.post(url, content=json.dumps(body, default=str), timeout=self.timeout,
                                  headers={"Content-Type": "application/json"})
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise self._failed(exc, url, secrets) from None  # the original names the URL: not chained
        # Webhook URLs carry secrets in their path: log the host only.
        self.log.info("Posted %s notification to %s (%s)", self.style or "webhook", httpx.URL(url).host,
                      response.status_code)

    async def async_notify(self, context: Context) -> None:
        import httpx

        url, body, secrets = self._prepare(context)
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.post(url, content=json.dumps(body, default=str),
                                             headers={"Content-Type": "application/json"})
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise self._failed(exc, url, secrets) from None
