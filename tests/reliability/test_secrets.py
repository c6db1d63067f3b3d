"""The LLM connection's key stays out of every repr, message and log line the hook produces."""

from __future__ import annotations

import json
import logging


def test_hook_settings_and_connection_test_hide_the_key(monkeypatch, caplog):
    from airflow_agentic.hooks.llm import AgenticLLMHook

    secret = "sk-live-0123456789abcdefSECRET"
    monkeypatch.setenv("AIRFLOW_CONN_AGENTIC_LLM_SECRET_TEST", json.dumps({
        "conn_type": "agentic_llm", "host": f"http://admin:{secret}@127.0.0.1:9/v1", "password": secret,
        "extra": {"model": "m", "timeout": 2, "max_retries": 0}}))
    hook = AgenticLLMHook("agentic_llm_secret_test")
    settings = hook.settings()
    assert settings.api_key == secret  # the key is there to be used...
    with caplog.at_level(logging.DEBUG):
        ok, message = hook.test_connection()  # nothing listens on port 9
    shown = " ".join([repr(settings), str(settings), repr(hook.planner()), json.dumps(hook.planner().describe()),
                      message, caplog.text])
    assert not ok and secret not in shown  # ...and never shown
    assert "127.0.0.1:9" in repr(settings)
