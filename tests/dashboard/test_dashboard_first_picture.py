"""The dashboard's first picture in the page's HTML (server/dashboard/first_picture.py), over ASGI."""

from __future__ import annotations

import asyncio
from typing import Any

from workflow_orchestrator.server.dashboard.blocks import first_picture
from workflow_orchestrator.server.dashboard.first_picture import FIRST_PICTURE_JS, FirstPicture, with_first_picture
from workflow_orchestrator.server.environment import EpisodeStore, StoreLimits
from workflow_orchestrator.server.tasks import default_registry

PAGE = b'<html><head></head><body style="x"><gradio-app eager="true">\n</gradio-app><script>1</script></body></html>'


def page_app(body: bytes = PAGE, status: int = 200, headers: list[tuple[bytes, bytes]] | None = None) -> Any:
    """An ASGI app answering every request with ``body`` in two chunks, as Gradio's template answers."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        given = headers if headers is not None else [(b"content-type", b"text/html; charset=utf-8")]
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*given, (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body[:20], "more_body": True})
        await send({"type": "http.response.body", "body": body[20:], "more_body": False})

    return app


def call(
    app: Any, path: str = "/web/", method: str = "GET", query: bytes = b""
) -> tuple[int, dict[bytes, bytes], bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "query_string": query, "headers": []}
    asyncio.run(app(scope, receive, send))
    start = sent[0]
    body = b"".join(message.get("body", b"") for message in sent[1:])
    return start["status"], dict(start["headers"]), body


def test_the_page_carries_the_picture_before_gradio_and_the_script_after() -> None:
    status, headers, body = call(FirstPicture(page_app(), path="/web/", picture="<div id=wo-first>P</div>"))
    assert status == 200
    assert body == with_first_picture(PAGE, b"<div id=wo-first>P</div>")
    assert body.index(b"<div id=wo-first>P</div>") < body.index(b"<gradio-app") < body.index(b"</gradio-app>")
    assert body.index(b"</gradio-app>") < body.index(FIRST_PICTURE_JS.encode())
    assert body.replace(b"<div id=wo-first>P</div>", b"").replace(FIRST_PICTURE_JS.encode(), b"") == PAGE
    assert int(headers[b"content-length"]) == len(body)


def test_everything_else_passes_as_it_came() -> None:
    picture = "<div id=wo-first>P</div>"
    cases = [
        (page_app(), {"path": "/web/gradio_api/info"}),
        (page_app(), {"method": "POST"}),
        # A shared link shows another episode than the opening one.
        (page_app(), {"query": b"episode=abc&step=3"}),
        (page_app(status=404), {}),
        (page_app(headers=[(b"content-type", b"application/json")]), {}),
        (page_app(headers=[(b"content-type", b"text/html"), (b"content-encoding", b"gzip")]), {}),
        # A page without Gradio's element is left alone.
        (page_app(body=b"<html><body>plain</body></html>"), {}),
    ]
    for app, request in cases:
        wrapped = FirstPicture(app, path="/web/", picture=picture)
        assert call(wrapped, **request) == call(app, **request), request


def test_the_first_picture_is_the_opening_view_of_the_first_task() -> None:
    registry = default_registry()
    first_task = registry.list_tasks()[0]
    markup = first_picture(EpisodeStore(registry, StoreLimits()), title="<b>Title</b>")
    assert markup.startswith('<div id="wo-first">')
    assert "&lt;b&gt;Title&lt;/b&gt;" in markup and "<b>Title</b>" not in markup
    assert markup.count('<g class="wo-node"') == len(registry.resolve(str(first_task["task_id"])).spec.subtasks)
    assert 'id="wo-dag"' in markup and 'id="wo-gantt"' in markup and "wo-gauge" in markup
    assert 'data-step="0"' in markup
    # It names no episode: it is the same for every browser.
    assert "wo-episode-id" not in markup
