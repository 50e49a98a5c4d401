"""Answers in JSON: :class:`ApiError`, JSON responses, error bodies and the app's error handlers.

Every 4xx the server sends has the same body (``error``, ``message``, and
when it helps ``expected``, the form the route wants, and ``errors``, the
validation errors without the input that caused them), whether a route, the
web framework or the middleware refused the request.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Send

logger = logging.getLogger("workflow_orchestrator.server")


class ApiError(Exception):
    """A 4xx with a stable error code and a message that says what to send instead."""

    def __init__(self, status: int, error: str, message: str, expected: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.expected = expected


# What each route wants, shown in its 4xx answers.
EXPECTED_FORMS: dict[str, Any] = {
    "/reset": {"task_id": "easy", "seed": 7},
    "/step": {
        "episode_id": "<episode_id from POST /reset>",
        "action": {"action_type": "delegate", "subtask_id": "<subtask id>", "agent_name": "<agent name>"},
    },
    "/state": "GET /state?episode_id=<episode_id from POST /reset>",
    "/grader": {"episode_id": "<episode_id>"},
    "/episodes": "GET /episodes/<episode_id>",
}

# The core produces string keys only; orjson is twice as fast without OPT_NON_STR_KEYS.
JSON_OPTIONS = 0


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(data, option=JSON_OPTIONS), status_code=status, media_type="application/json", headers=headers
    )


def error_body(
    error: str, message: str, expected: Any = None, errors: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"error": error, "message": message}
    if expected is not None:
        body["expected"] = expected
    if errors is not None:
        body["errors"] = errors
    return body


def expected_form(path: str) -> Any:
    if path.startswith("/episodes/"):
        return EXPECTED_FORMS["/episodes"]
    return EXPECTED_FORMS.get(path)


def describe_validation_errors(errors: Sequence[Mapping[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """A one-line summary and the errors without the offending input (which may be huge)."""
    cleaned = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ())]
        cleaned.append({"loc": location, "msg": str(error.get("msg", "")), "type": str(error.get("type", ""))})
    summary = "; ".join(f"{'.'.join(item['loc']) or 'body'}: {item['msg']}" for item in cleaned[:5])
    if len(cleaned) > 5:
        summary += f"; and {len(cleaned) - 5} more"
    return summary, cleaned


def install_error_handlers(app: FastAPI) -> None:
    async def on_api_error(request: Request, exc: ApiError) -> Response:
        return json_response(error_body(exc.error, exc.message, exc.expected), exc.status)

    async def on_validation_error(request: Request, exc: RequestValidationError) -> Response:
        path = request.url.path
        for item in exc.errors():
            if item.get("type") == "json_invalid":
                # FastAPI's location is a character offset ("body.15: JSON decode error"): say it in words.
                loc = item.get("loc", ())
                where = f" at character {loc[-1]}" if len(loc) > 1 else ""
                reason = str((item.get("ctx") or {}).get("error") or "malformed")
                return json_response(
                    error_body(
                        "invalid_json",
                        f"{request.method} {path}: the body is not valid JSON ({reason}{where}); send a JSON object",
                        expected_form(path),
                    ),
                    422,
                )
        summary, cleaned = describe_validation_errors(exc.errors())
        if any(item["type"] == "model_attributes_type" and item["loc"] == ["body"] for item in cleaned):
            summary = "the body must be a JSON object"
            if "json" not in request.headers.get("content-type", ""):
                summary += ", sent with the header Content-Type: application/json"
        return json_response(
            error_body("invalid_request", f"{request.method} {path}: {summary}", expected_form(path), cleaned), 422
        )

    async def on_http_error(request: Request, exc: StarletteHTTPException) -> Response:
        names = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}
        message = str(exc.detail)
        if exc.status_code == 400 and "parsing the body" in message:
            # FastAPI's answer to a body that json.loads cannot take (bad bytes,
            # too deep, a number too long): the same 422 as any other bad JSON.
            return json_response(
                error_body(
                    "invalid_json",
                    "the body could not be parsed as JSON (malformed, not UTF-8, nested too deeply, "
                    "or a number too long)",
                    expected_form(request.url.path),
                ),
                422,
            )
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path}; see GET /docs"
        elif exc.status_code == 405:
            allowed = {k.lower(): v for k, v in (getattr(exc, "headers", None) or {}).items()}.get("allow", "")
            message = f"{request.method} is not allowed on {request.url.path}; use {allowed}"
        error = names.get(exc.status_code, "bad_request" if exc.status_code < 500 else "server_error")
        return json_response(
            error_body(error, message, expected_form(request.url.path)),
            exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    async def on_unexpected_error(request: Request, exc: Exception) -> Response:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return json_response(error_body("server_error", "internal error; this is a bug in the server"), 500)

    app.add_exception_handler(ApiError, on_api_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, on_validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, on_http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, on_unexpected_error)


async def send_json(
    send: Send, status: int, body: dict[str, Any], extra_headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """A JSON answer sent straight on an ASGI connection, for middleware that runs before the app."""
    payload = orjson.dumps(body)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()), *extra_headers]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
