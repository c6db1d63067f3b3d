"""A small OpenAI-compatible chat-completions server on loopback that each test scripts.

Scripted answers, in order: {"tool": name, "arguments": dict | raw str}, {"text": "..."},
{"status": 429, "headers": {"retry-after": "0"}}, {"status": 500}, {"hang": seconds}.
When the script runs out it answers `finish`. Every request is kept for assertions.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class ScriptedLLM:
    def __init__(self, model: str = "scripted-model"):
        self.model = model
        self.script: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):  # noqa: N802
                try:
                    self._answer()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a scripted hang past its timeout)

            def _answer(self):
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with outer._lock:
                    outer.requests.append(body)
                    outer.headers.append({k.lower(): v for k, v in self.headers.items()})
                    item = outer.script.pop(0) if outer.script else {"tool": "finish", "arguments": {"rationale": "script done"}}
                if "hang" in item:
                    time.sleep(item["hang"])
                    item = {"text": "too late"}
                status = item.get("status", 200)
                if status != 200:
                    payload = json.dumps({"error": {"message": f"scripted {status}", "type": "scripted"}}).encode()
                    self.send_response(status)
                    for k, v in item.get("headers", {}).items():
                        self.send_header(k, v)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                message: dict[str, Any] = {"role": "assistant", "content": None}
                if "tool" in item:
                    args = item.get("arguments", {})
                    message["tool_calls"] = [{
                        "id": f"call_{len(outer.requests)}",
                        "type": "function",
                        "function": {"name": item["tool"], "arguments": args if isinstance(args, str) else json.dumps(args)},
                    }]
                    finish = "tool_calls"
                else:
                    message["content"] = item.get("text", "")
                    finish = "stop"
                payload = json.dumps({
                    "id": f"chatcmpl-{len(outer.requests)}", "object": "chat.completion", "created": int(time.time()),
                    "model": outer.model,
                    "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                    "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
                }).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ScriptedLLM:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def then(self, *items: dict[str, Any]) -> ScriptedLLM:
        self.script.extend(items)
        return self

    @property
    def calls(self) -> int:
        return len(self.requests)
