"""The agent runtime: tools, planners, guardrails, approvals, traces and durable replay. No Airflow here."""

from __future__ import annotations

from airflow_agentic.agents.approval import (
    ApprovalAnswer,
    ApprovalPending,
    ApprovalRequest,
    DeferredApprover,
    auto_approve,
    auto_reject,
)
from airflow_agentic.agents.budget import Budget
from airflow_agentic.agents.decision import FINISH, Decision, PlanningContext, bound, finish
from airflow_agentic.agents.guard import Guard, GuardVerdict
from airflow_agentic.agents.journal import Journal
from airflow_agentic.agents.loop import Agent, AgentLoop, AgentStop
from airflow_agentic.agents.planner import Planner, PlannerError, RulePlanner
from airflow_agentic.agents.tools import Risk, Tool, Toolset, tool
from airflow_agentic.agents.trace import AgentRun, TraceStep

__all__ = [
    "FINISH", "Agent", "AgentLoop", "AgentRun", "AgentStop", "ApprovalAnswer", "ApprovalPending", "ApprovalRequest",
    "Budget", "Decision", "DeferredApprover", "Guard", "GuardVerdict", "Journal", "Planner", "PlannerError",
    "PlanningContext", "Risk", "RulePlanner", "Tool", "Toolset", "TraceStep", "auto_approve", "auto_reject", "bound",
    "finish", "tool",
]
