"""The dashboard at ``/web``: a live picture of an episode, played from the browser.

The server imports this package only when the web UI is on (``server``
without ``--no-web``), and calls :func:`mount_dashboard`. Three entry points:

* :func:`build_dashboard` ``(store) -> gr.Blocks``: the page itself.
* :func:`gradio_builder` ``(store)``: the same page as a ``gradio_builder``
  for openenv's ``create_app`` / ``create_web_interface_app``, whose
  signature is ``(web_manager, action_fields, metadata, is_chat_env, title,
  quick_start_md) -> gr.Blocks``. The builder ignores openenv's
  ``web_manager``: that manager holds one environment shared by every
  browser, and this dashboard gives each browser session its own episode in
  the episode store.
* :func:`mount_dashboard` ``(app, store)``: mounts the page at ``/web`` on
  this server's app, as openenv's web interface mounts a builder's Blocks
  when its default tab is off (``gr.mount_gradio_app``), with a theme that
  names only system fonts, so the page fetches nothing from the network;
  and ``GET /web/export/{episode_id}.json``, the episode as one JSON file
  (see :func:`.session.export_episode`; one that left the store is read from
  the archive, :func:`.session.export_archived`), which the page links to. An
  episode is shown and exported only to the browser that started it, or to
  whoever gives its ``episode_secret`` (the export takes it as the
  ``X-Episode-Secret`` header or the ``secret`` parameter) or the server's
  token (the server's ``api_token``, read from ``app.state.settings``).
  The page's HTML carries a static copy of its opening view, shown until
  Gradio has drawn the page (:mod:`.first_picture`), and its Policy step
  goes through ``POST /web/api/policy-step`` (see
  :func:`.blocks.add_policy_step_route`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import gradio as gr
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse

from workflow_orchestrator.server.environment import EpisodeNotFoundError, EpisodeStore

from .blocks import DEFAULT_TITLE, build_dashboard, first_picture
from .first_picture import FirstPicture
from .session import export_archived, export_episode, may_export, may_export_archived, refusal

__all__ = ["DASHBOARD_PATH", "build_dashboard", "dashboard_theme", "gradio_builder", "mount_dashboard"]

DASHBOARD_PATH = "/web"

SYSTEM_FONTS = ("system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif")
SYSTEM_MONO_FONTS = ("ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "Liberation Mono", "monospace")

GradioBuilder = Callable[[Any, list[dict[str, Any]], Any, bool, str, "str | None"], gr.Blocks]


def dashboard_theme() -> gr.themes.Base:
    """Gradio's base theme with system fonts only.

    Gradio's default themes name Google fonts, which the browser would fetch
    from the network; plain font names are looked up on the machine.
    """
    return gr.themes.Base(primary_hue="green", neutral_hue="slate", font=SYSTEM_FONTS, font_mono=SYSTEM_MONO_FONTS)


def gradio_builder(store: EpisodeStore, token: str | None = None) -> GradioBuilder:
    """A ``gradio_builder`` for openenv that builds this dashboard on ``store``.

    ``token`` is the server's bearer token, if it has one: given in the page,
    it opens any episode, as an episode's own secret opens that one.
    """

    def build(
        web_manager: Any,
        action_fields: list[dict[str, Any]],
        metadata: Any,
        is_chat_env: bool,
        title: str,
        quick_start_md: str | None = None,
    ) -> gr.Blocks:
        return build_dashboard(store, title=title or DEFAULT_TITLE, token=token)

    return build


def mount_dashboard(app: FastAPI, store: EpisodeStore, path: str = DASHBOARD_PATH) -> FastAPI:
    """Serve the dashboard at ``path`` on ``app``; ``/`` and ``path`` redirect to ``path/``."""
    settings = getattr(app.state, "settings", None)
    token: str | None = getattr(settings, "api_token", None) or None
    # The page's Policy step goes through a JSON route of its own on this app (see build_dashboard).
    blocks = build_dashboard(store, title=DEFAULT_TITLE, token=token, api=app, api_path=f"{path}/api")
    existing = {getattr(route, "path", None) for route in app.router.routes}

    async def to_dashboard() -> RedirectResponse:
        return RedirectResponse(url=f"{path}/")

    async def no_uploads() -> JSONResponse:
        return JSONResponse(
            {"error": "uploads_disabled", "message": "the dashboard takes no files; uploads are turned off"},
            status_code=403,
        )

    async def export(episode_id: str, request: Request) -> JSONResponse:
        credential = request.headers.get("x-episode-secret") or request.query_params.get("secret") or None
        try:
            stored = store.get(episode_id)
        except EpisodeNotFoundError as exc:
            # An episode that left the store is exported from the archive, as the dashboard replays it.
            record = await store.archive.get(episode_id) if store.archive is not None else None
            if record is None:
                return JSONResponse({"detail": str(exc)}, status_code=404)
            if not may_export_archived(record, credential, token):
                return JSONResponse({"detail": refusal(episode_id, credential)}, status_code=403)
            document = await asyncio.to_thread(export_archived, store, record)
            if isinstance(document, str):
                return JSONResponse({"detail": document}, status_code=409)
        else:
            if not may_export(stored, credential, token):
                return JSONResponse({"detail": refusal(episode_id, credential)}, status_code=403)
            document = export_episode(stored)
        return JSONResponse(
            document, headers={"Content-Disposition": f'attachment; filename="episode-{episode_id}.json"'}
        )

    # Routes before the mount, so that they answer first (as openenv's web interface does).
    # The page has no file input: Gradio's upload route (anonymous, written to disk) is off.
    app.add_api_route(f"{path}/gradio_api/upload", no_uploads, methods=["POST"], include_in_schema=False)
    if path not in existing:
        app.add_api_route(path, to_dashboard, methods=["GET"], include_in_schema=False)
    if "/" not in existing:
        app.add_api_route("/", to_dashboard, methods=["GET"], include_in_schema=False)
    app.add_api_route(f"{path}/export/{{episode_id}}.json", export, methods=["GET"], include_in_schema=False)
    # The page's HTML carries the opening view, painted before Gradio's scripts have drawn anything.
    app.add_middleware(FirstPicture, path=f"{path}/", picture=first_picture(store))
    mounted: FastAPI = gr.mount_gradio_app(
        app,
        blocks,
        path=path,
        theme=dashboard_theme(),
        footer_links=["api", "settings"],
        # Run history keeps past calls in the browser's storage; episodes have
        # their own history here, and nothing else should be kept.
        run_history=False,
        ssr_mode=False,
    )
    return mounted
