"""A webhook URL carries its secret (Slack's path, a token in the query, user info) and PagerDuty's routing key is
one: neither may reach an exception message, its traceback or a log line, whatever goes wrong."""

from __future__ import annotations

import json
import traceback

import pytest

TOKEN = "XOXB-s3cr3t-T0KEN-42"


def _context():
    from types import SimpleNamespace

    return {"ti": SimpleNamespace(dag_id="d", task_id="t", run_id="r", state="failed")}


def _failure(notifier) -> tuple[Exception, str]:
    """The error and all that was printed about it: its traceback and the log lines (Airflow's logging prints)."""
    with pytest.raises(Exception) as info:
        notifier(_context())  # BaseNotifier.__call__: renders, notifies, logs the failure, re-raises
    return info.value, "".join(traceback.format_exception(info.value))


@pytest.mark.parametrize("status", [404, 500])
def test_refused_post_names_no_secret(webhook, capfd, status):
    from airflow_agentic.notifications.webhook import WebhookError, WebhookNotifier

    webhook.status = status
    notifier = WebhookNotifier(url=f"{webhook.url}/services/T0/B0/{TOKEN}?token={TOKEN}", text="hello")
    error, printed = _failure(notifier)
    assert isinstance(error, WebhookError) and f"({status})" in str(error) and "127.0.0.1" in str(error)
    logged = capfd.readouterr()
    assert "Failed to send notification" in logged.out + logged.err
    assert TOKEN not in printed and TOKEN not in logged.out + logged.err


def test_unreachable_host_and_pagerduty_key_name_no_secret(capfd):
    from servers import free_port

    from airflow_agentic.notifications.webhook import WebhookError, WebhookNotifier

    url = f"http://user:{TOKEN}@127.0.0.1:{free_port()}/hook/{TOKEN}"
    for notifier in (WebhookNotifier(url=url, text="x"),
                     WebhookNotifier(url=url, style="pagerduty", routing_key=TOKEN, text="x")):
        error, printed = _failure(notifier)
        assert isinstance(error, WebhookError) and "127.0.0.1" in str(error)
        logged = capfd.readouterr()
        assert TOKEN not in printed and TOKEN not in logged.out + logged.err


def test_connection_secret_is_redacted_too(webhook, monkeypatch):
    from airflow_agentic.notifications.webhook import WebhookNotifier, redact

    webhook.status = 403
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_OPS", json.dumps({"conn_type": "http", "host": webhook.url,
                                                             "extra": {"endpoint": f"/services/{TOKEN}"}}))
    error, printed = _failure(WebhookNotifier(conn_id="slack_ops"))
    assert TOKEN not in printed and "(403)" in str(error)
    assert redact(f"see https://hooks.slack.com/services/{TOKEN} now") == "see https://hooks.slack.com/*** now"


def test_a_working_post_still_arrives(webhook):
    from airflow_agentic.notifications.webhook import WebhookNotifier

    WebhookNotifier(url=f"{webhook.url}/services/{TOKEN}", text="hello").notify(_context())
    assert webhook.requests[0]["json"] == {"text": "[d.t r] hello"}
