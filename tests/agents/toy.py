"""A small agent for testing the runtime: it manages a counter and can 'publish' (a side effect) or 'wipe'."""

from __future__ import annotations

from airflow_agentic.agents import Agent, AgentStop, Decision, PlanningContext, Risk, Toolset, finish, tool


class CounterAgent(Agent):
    name = "counter"
    default_goal = "bring the counter to the target, then publish it"

    def __init__(self, target: int = 3, data: str = "", published: list | None = None):
        self.target = target
        self.value = 0
        self.data = data
        self.published = published if published is not None else []

    def toolset(self) -> Toolset:
        @tool(risk=Risk.WRITE)
        def increment(by: int = 1) -> dict:
            """Add `by` to the counter."""
            self.value += by
            return {"value": self.value}

        @tool(risk=Risk.WRITE, side_effects=True)
        def publish(channel: str = "default") -> dict:
            """Publish the counter (an external side effect)."""
            self.published.append((channel, self.value))
            return {"published": self.value, "channel": channel}

        @tool(risk=Risk.DESTRUCTIVE, side_effects=True)
        def wipe(reason: str) -> dict:
            """Reset the counter and everything published."""
            self.published.clear()
            self.value = 0
            return {"wiped": True}

        @tool(risk=Risk.READ)
        def explode() -> dict:
            """Always fails."""
            raise RuntimeError("boom")

        @tool(risk=Risk.WRITE)
        def halt(reason: str) -> dict:
            """Stop the pipeline on purpose."""
            raise AgentStop(reason)

        return Toolset.of([increment, publish, wipe, explode, halt])

    def observe(self) -> dict:
        return {"value": self.value, "target": self.target, "published": len(self.published), "note": self.data}

    def rule_policy(self, ctx: PlanningContext) -> Decision:
        if self.value < self.target and "increment" in ctx.tool_names:
            return Decision("increment", {"by": 1}, "below target")
        if not ctx.done("publish") and "publish" in ctx.tool_names:
            return Decision("publish", {"channel": "default"}, "target reached")
        return finish("done")

    def result(self) -> dict:
        return {"value": self.value, "published": list(self.published)}
