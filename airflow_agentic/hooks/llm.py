"""A thin hook over the `openai` client for any OpenAI-compatible endpoint (OpenAI, Azure, vLLM, Ollama, llama.cpp)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    from airflow_agentic.agents.llm_planner import LLMPlanner, LLMSettings


class AgenticLLMHook(BaseHook):
    """Connection fields: Host = base URL (e.g. ``http://localhost:11434/v1``), Password = API key, and in the extra
    ``model``, ``temperature``, ``timeout`` (seconds) and ``max_retries``."""

    conn_name_attr = "llm_conn_id"
    default_conn_name = "agentic_llm_default"
    conn_type = "agentic_llm"
    hook_name = "Agentic LLM (OpenAI-compatible)"

    def __init__(self, llm_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.llm_conn_id = llm_conn_id

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["schema", "port", "login"],
            "relabeling": {"host": "Base URL", "password": "API key"},
            "placeholders": {"host": "https://api.openai.com/v1", "password": "sk-..."},
        }

    def settings(self) -> LLMSettings:
        from airflow_agentic.agents.llm_planner import LLMSettings

        conn = self.get_connection(self.llm_conn_id)
        extra = conn.extra_dejson
        base_url = conn.host or extra.get("base_url")
        if base_url and "://" not in base_url:  # a bare host name, as the classic form stores it
            base_url = f"https://{base_url}{f':{conn.port}' if conn.port else ''}"
        return LLMSettings(
            base_url=base_url or None,
            api_key=conn.password or extra.get("api_key"),
            model=str(extra.get("model") or "gpt-4o-mini"),
            temperature=float(extra.get("temperature", 0.0)),
            timeout=float(extra.get("timeout", 60.0)),
            max_retries=int(extra.get("max_retries", 3)),
        )

    def get_conn(self):
        """The `openai.OpenAI` client for this connection."""
        return self.planner().client

    def planner(self) -> LLMPlanner:
        from airflow_agentic.agents.llm_planner import LLMPlanner

        return LLMPlanner(self.settings())

    def text_generator(self, temperature: float = 0.8, max_calls: int = 3):
        """A generator for synthetic text rows (see ``airflow_agentic.data.synthesis.generate_text_rows``) on this
        connection's endpoint and model; the SDK retries rate limits and server errors ``max_retries`` times."""
        from openai import OpenAI

        from airflow_agentic.agents.llm_planner import redact_http_logs
        from airflow_agentic.data.synthesis import LLMTextGenerator

        redact_http_logs()  # httpx logs request URLs: credentials in them are masked
        settings = self.settings()
        client = OpenAI(base_url=settings.base_url, api_key=settings.api_key or "not-needed",
                        timeout=settings.timeout, max_retries=settings.max_retries)
        return LLMTextGenerator(client, settings.model, temperature=temperature, max_calls=max_calls)

    def test_connection(self) -> tuple[bool, str]:
        settings = self.settings()
        try:
            models = self.get_conn().models.list()
            return True, f"Connected; {len(list(models))} models listed."
        except Exception as exc:  # noqa: BLE001 - reported to the UI, with the key and URL credentials masked
            return False, settings.redact(f"{type(exc).__name__}: {exc}")
