"""Secrets never leave through a repr or a message; traces stay bounded; the wall-time budget bounds the LLM call."""

from __future__ import annotations

import json
import logging
import time

from airflow_agentic.agents import AgentLoop
from airflow_agentic.agents.llm_planner import LLMPlanner, LLMSettings
from airflow_agentic.agents.trace import TRUNCATED, AgentRun, TraceStep, redact, redact_url
from llm_server import ScriptedLLM
from agents.toy import CounterAgent

SECRET = "sk-test-SECRET-never-logged-1234"


def test_settings_repr_hides_the_key_and_url_credentials():
    settings = LLMSettings(base_url="https://bob:hunter2pass@llm.example.com/v1?api_key=abc123def456", api_key=SECRET)
    for text in (repr(settings), str(settings), repr(LLMPlanner(settings)), json.dumps(LLMPlanner(settings).describe())):
        assert SECRET not in text and "hunter2pass" not in text and "abc123def456" not in text, text
        assert "llm.example.com" in text
    assert "api_key='***'" in repr(settings)
    assert "api_key=None" in repr(LLMSettings())


def test_redaction_helper():
    slack = "https://hooks.slack.com/services/T0AAAA1/B0BBBB2/zQ9xYt7Lk3Mn8Pq2Rs5Tv6Wx"
    assert redact_url(slack) == "https://hooks.slack.com/services/***/***/***"
    assert redact_url("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"
    assert redact_url("https://u:p4ss@h.io:5000/a?token=t0k&page=2") == "https://u:***@h.io:5000/a?token=***&page=2"
    message = redact(f"POST {slack} failed: 403 (key {SECRET}, Authorization: Bearer abcdefghijklmnopq)", ["p4ss"])
    assert "zQ9xYt7" not in message and SECRET not in message and "abcdefghijklmnopq" not in message
    assert message.startswith("POST https://hooks.slack.com/services/***") and "failed: 403" in message
    assert redact("the password p4ssw0rd-long is wrong", ["p4ssw0rd-long"]) == "the password *** is wrong"


def test_errors_from_the_endpoint_carry_no_secret(caplog):
    # a refused request whose body echoes the key back (as some proxies do)
    with ScriptedLLM() as server:
        server.then({"status": 401})
        settings = LLMSettings(base_url=server.base_url.replace("http://", f"http://user:{SECRET}@"), api_key=SECRET,
                               model="scripted-model", max_retries=0)
        with caplog.at_level(logging.DEBUG):
            run = AgentLoop(CounterAgent(target=1), planner=LLMPlanner(settings)).run()
    dumped = json.dumps(run.to_dict()) + caplog.text
    assert run.fallback_reason and "HTTP 401" in run.fallback_reason
    assert SECRET not in dumped


def test_a_tool_error_with_a_signed_url_is_redacted():
    class Leaky(CounterAgent):
        def toolset(self):
            from airflow_agentic.agents import Risk, Toolset, tool

            @tool(risk=Risk.READ)
            def fetch() -> dict:
                """Fetch a file."""
                raise RuntimeError("GET https://bucket.s3.amazonaws.com/f.csv?X-Amz-Signature=deadbeefcafe1234 403")

            return Toolset.of([fetch, *super().toolset().tools.values()])

        def rule_policy(self, ctx):
            from airflow_agentic.agents import Decision

            if not ctx.history:
                return Decision("fetch", {}, "read it")
            return super().rule_policy(ctx)

    run = AgentLoop(Leaky(target=0)).run()
    assert "deadbeefcafe1234" not in json.dumps(run.to_dict())
    assert "X-Amz-Signature=***" in run.steps[0].error


class Verbose(CounterAgent):
    def summarise(self, tool, value):
        return value  # an agent that does not shrink its results: the trace must still stay bounded


def test_huge_tool_arguments_and_results_are_cut_in_the_trace():
    big = "x" * 3_000_000
    with ScriptedLLM() as server:
        server.then({"tool": "publish", "arguments": {"channel": big}})
        settings = LLMSettings(base_url=server.base_url, api_key=SECRET, model="scripted-model")
        agent = Verbose(target=0)
        run = AgentLoop(agent, planner=LLMPlanner(settings)).run()
    assert agent.published == [(big, 0)]  # the tool itself got the whole argument
    step = run.steps[0]
    assert step.arguments[TRUNCATED]["full_chars"] > 3_000_000
    assert step.result[TRUNCATED]["full_chars"] > 3_000_000  # the tool echoed the channel back
    dumped = json.dumps(run.to_dict())
    assert len(json.dumps(run.to_dict()["steps"])) < 40_000  # (the agent's own result is its business)
    # the next prompt (history) stayed small too
    assert len(json.dumps(server.requests[-1])) < 40_000
    again = AgentRun.from_dict(json.loads(dumped))
    assert again.steps[0].arguments == step.arguments  # a bounded value is stable through XCom


def test_small_values_are_kept_exactly():
    step = TraceStep(step=1, agent="a", planner="rule", tool="t", arguments={"by": 2, "names": ["a"] * 80})
    step.result = {"value": list(range(100))}
    d = step.to_dict()
    assert d["arguments"] == {"by": 2, "names": ["a"] * 80} and d["result"] == {"value": list(range(100))}


def test_wall_time_budget_bounds_a_slow_llm_call():
    with ScriptedLLM() as server:
        server.then({"hang": 8}, {"hang": 8}, {"hang": 8})
        settings = LLMSettings(base_url=server.base_url, api_key=SECRET, model="scripted-model", timeout=60,
                               max_retries=3, backoff_base=0.01)
        agent = CounterAgent(target=2)
        started = time.monotonic()
        run = AgentLoop(agent, planner=LLMPlanner(settings), budget={"max_seconds": 1.0}).run()
        elapsed = time.monotonic() - started
    assert elapsed < 3.0, elapsed
    assert run.status == "finished" and agent.published == [("default", 2)]  # the rule planner finished the job
    assert "budget" in run.fallback_reason or "Timeout" in run.fallback_reason
    assert server.calls == 1  # no retry once the budget is gone


def test_budgets_and_settings_are_checked():
    import pytest

    from airflow_agentic.agents.budget import Budget

    assert Budget.from_value({"max_steps": "4", "max_seconds": "1.5"}) == Budget(max_steps=4, max_seconds=1.5)
    for bad, match in [({"max_steps": 0}, "max_steps must be an integer >= 1"), ({"max_steps": 2.5}, "whole number"),
                       ({"max_seconds": -1}, "max_seconds must be a positive"), ({"max_seconds": "soon"}, "a number"),
                       ({"max_tokens": -5}, "max_tokens must be an integer >= 0"), ("fast", "a budget is a dict"),
                       ({"max_minutes": 3}, "unknown budget keys")]:
        with pytest.raises(ValueError, match=match):
            Budget.from_value(bad)
    for kwargs, match in [({"timeout": 0}, "timeout"), ({"max_retries": -1}, "max_retries"),
                          ({"base_url": "ftp://u:hunter2pass@h/v1"}, "must start with http")]:
        with pytest.raises(ValueError, match=match) as info:
            LLMSettings(**kwargs)
        assert "hunter2pass" not in str(info.value)
