"""The dashboard's first picture, in the page's HTML itself.

Gradio draws the page in the browser: the HTML it serves holds an empty
``<gradio-app>`` element, and nothing shows until a chain of scripts has
loaded, one module per component type has been imported and Svelte has
mounted every component (about 2.5 s on the development machine, of which
about 1.1 s with a page of one component). :class:`FirstPicture` puts a
static copy of the opening view (the title, the gauges, the DAG and the
Gantt chart of the first task at step 0: the pictures the page's regions
start with) in that HTML, right before ``<gradio-app>``, so the browser
paints it with the HTML, and a small script removes it as soon as Gradio's
own DAG is mounted (in the same microtask checkpoint, so that the page never
holds both). A shared link (``?episode=...``) names another episode than
the opening one: its page is served as Gradio made it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from . import views

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# The picture's colours follow the page's theme (Gradio's ``?__theme=`` or the system's
# preference), and it goes as soon as Gradio's DAG is on the page.
FIRST_PICTURE_JS = """<script>(() => {
  const first = document.getElementById('wo-first');
  if (!first) { return; }
  const chosen = new URLSearchParams(window.location.search).get('__theme');
  if (chosen === 'dark' || (chosen !== 'light' && window.matchMedia('(prefers-color-scheme: dark)').matches)) {
    first.classList.add('dark');
  }
  const app = document.querySelector('gradio-app');
  if (!app) { return; }
  new MutationObserver((_, watcher) => {
    if (app.querySelector('#wo-dag')) { first.remove(); watcher.disconnect(); }
  }).observe(app, {childList: true, subtree: true});
})();</script>"""

FIRST_PICTURE_CSS = """
#wo-first { padding: 16px; }
#wo-first.dark { background: #0d1117; }
html:has(#wo-first.dark) { background: #0d1117; }
"""


def first_picture_html(title: str, intro: str, css: str, regions: list[str]) -> str:
    """The static first picture: ``title`` and ``intro`` (markup), then ``regions`` (the gauges, the main column)."""
    body = "".join(regions)
    return (
        f'<div id="wo-first"><div class="gradio-container wo-first">'
        f"<style>{css}{FIRST_PICTURE_CSS}</style>"
        f'<h2 class="wo-title">{views.esc(title)}</h2>{intro}{body}</div></div>'
    )


def with_first_picture(page: bytes, picture: bytes) -> bytes:
    """``page`` (Gradio's HTML) with ``picture`` before its ``<gradio-app>`` and the script after it."""
    start = page.find(b"<gradio-app")
    end = page.find(b"</gradio-app>", start)
    if start < 0 or end < 0:
        return page
    end += len(b"</gradio-app>")
    return page[:start] + picture + page[start:end] + FIRST_PICTURE_JS.encode() + page[end:]


class FirstPicture:
    """ASGI middleware: a ``GET`` of the dashboard's page (``path``) gets :func:`with_first_picture`.

    Only a complete 200 HTML answer that is not compressed is changed (its
    ``content-length`` recomputed); everything else passes as it came.
    """

    def __init__(self, app: ASGIApp, path: str, picture: str) -> None:
        self.app = app
        self.path = path
        self.picture = picture.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope.get("method") != "GET"
            or scope.get("path") != self.path
            or b"episode=" in scope.get("query_string", b"")
        ):
            await self.app(scope, receive, send)
            return
        started: Message | None = None
        parts: list[bytes] = []
        answered = False

        async def rewrite(message: Message) -> None:
            nonlocal started, answered
            if message["type"] == "http.response.start":
                started = message
                return
            if message["type"] != "http.response.body" or started is None:
                await send(message)
                return
            parts.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            page = b"".join(parts)
            headers = [(bytes(key), bytes(value)) for key, value in started.get("headers", [])]
            names = {key.lower(): value for key, value in headers}
            if (
                started.get("status") == 200
                and names.get(b"content-type", b"").startswith(b"text/html")
                and b"content-encoding" not in names
            ):
                page = with_first_picture(page, self.picture)
                headers = [(key, value) for key, value in headers if key.lower() != b"content-length"]
                headers.append((b"content-length", str(len(page)).encode()))
            answered = True
            await send({**started, "headers": headers})
            await send({"type": "http.response.body", "body": page, "more_body": False})

        await self.app(scope, receive, rewrite)
        if started is not None and not answered:  # an answer that ended without its body
            await send(started)
            await send({"type": "http.response.body", "body": b"".join(parts), "more_body": False})
