"""A small scripted OpenAI-compatible server on loopback, for tests that use the
real ``openai`` client: each chat completion is answered by a Python function
of the request's messages (or with an HTTP error), with a fixed ``usage``."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.support.threaded_server import ThreadedServer

PROMPT_TOKENS = 10
COMPLETION_TOKENS = 5

# A reply: the content, or an int (an HTTP error status).
Responder = Callable[[list[dict[str, Any]]], "str | int"]


class ScriptedModel:
    def __init__(self, responder: Responder) -> None:
        self.responder = responder
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.server: ThreadedServer | None = None

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}/v1"

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> JSONResponse:
            body = await request.json()
            with self.lock:
                self.requests.append(body)
            reply = self.responder(body["messages"])
            if isinstance(reply, int):
                return JSONResponse({"error": {"message": f"scripted {reply}", "type": "test"}}, status_code=reply)
            return JSONResponse(
                {
                    "id": "chatcmpl-scripted",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body["model"],
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}
                    ],
                    "usage": {
                        "prompt_tokens": PROMPT_TOKENS,
                        "completion_tokens": COMPLETION_TOKENS,
                        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
                    },
                }
            )

        return app

    def __enter__(self) -> ScriptedModel:
        self.server = ThreadedServer(self.app())
        self.server.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self.server is not None:
            self.server.__exit__(*exc_info)


def system_of(messages: list[dict[str, Any]]) -> str:
    return str(messages[0]["content"]) if messages and messages[0]["role"] == "system" else ""
