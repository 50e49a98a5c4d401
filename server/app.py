"""The server's entry: :func:`build_app` puts the app together, :func:`main` runs it.

openenv's app creates a fresh environment for every HTTP request, so a
plain HTTP client could never play an episode. This server keeps openenv's
app (``/health``, ``/mcp``, the OpenAPI documents) and replaces the routes
that need episodes with its own, from the ``server/http`` package:

* ``http.routes``: ``POST /reset`` starts an episode in a bounded store and
  returns its ``episode_id`` in the observation; ``POST /step`` and
  ``GET /state`` continue it by that id. ``GET /tasks``, ``POST /grader``,
  ``GET /episodes/{id}``, ``POST /baseline``, ``GET /schema`` (our state
  schema), ``GET /metadata`` (with the README).
* ``http.sessions``: ``/ws`` speaks openenv's session protocol, one episode
  per connection, up to ``max_concurrent_envs`` connections; a dropped
  connection frees its slot at once and an idle one is closed after
  ``session_idle_timeout_s``.
* ``http.responses`` and ``http.middleware``: bad input of any kind gets a
  4xx whose body says what to send; bodies are bounded; with a token
  configured, every route but ``/health`` needs it.
* ``http.settings``: :class:`ServerSettings` from the environment and the
  command line.

Each step builds the observation once, as plain data from the core, and
serialises it once. The dashboard is mounted at ``/web`` when the web UI is on.

Run it with the ``server`` script (``uv run server``), ``python -m
workflow_orchestrator.server.app``, or ``uvicorn
workflow_orchestrator.server.app:app`` (settings from the environment).
"""

from __future__ import annotations

import functools
import gc
import importlib
import importlib.util
import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from workflow_orchestrator.server.http.settings import (
    ServerSettings,
    exposure_warning,
    parse_settings,
    settings_from_environment,
)

if TYPE_CHECKING:
    from fastapi import FastAPI

    from workflow_orchestrator.server.environment import EpisodeStore
    from workflow_orchestrator.server.http.protocol import ConnectionLimits

__all__ = [
    "ServerSettings",
    "build_app",
    "exposure_warning",
    "main",
    "mount_dashboard",
    "parse_settings",
    "settings_from_environment",
    "tune_garbage_collector",
]

logger = logging.getLogger("workflow_orchestrator.server")

DASHBOARD_MODULE = "workflow_orchestrator.server.dashboard"


def build_app(settings: ServerSettings | None = None) -> FastAPI:
    """The whole server as an ASGI app (the dashboard too when ``settings.enable_web``)."""
    # Imported here rather than at the top, so that `server --help` and a bad
    # option are answered without loading openenv and the web framework (seconds).
    from openenv.core.env_server.http_server import create_fastapi_app
    from openenv.core.env_server.types import ConcurrencyConfig
    from starlette.routing import WebSocketRoute

    from workflow_orchestrator.models import WorkflowAction, WorkflowObservation
    from workflow_orchestrator.server.archive import Archive, ArchiveLimits
    from workflow_orchestrator.server.environment import EpisodeStore, StoreLimits, WorkflowEnvironment
    from workflow_orchestrator.server.http.classic import ClassicSchemaMiddleware
    from workflow_orchestrator.server.http.middleware import (
        BearerTokenMiddleware,
        BodySizeLimitMiddleware,
        HeadMiddleware,
    )
    from workflow_orchestrator.server.http.responses import install_error_handlers
    from workflow_orchestrator.server.http.routes import (
        ENV_NAME,
        REPLACED_PATHS,
        VERSION,
        add_episode_routes,
        build_metadata,
    )
    from workflow_orchestrator.server.http.sessions import SessionEndpoint, add_health_route, install_housekeeping
    from workflow_orchestrator.server.http.taskroutes import add_task_routes
    from workflow_orchestrator.server.taskapi import TaskCatalogue
    from workflow_orchestrator.server.tasks import default_registry

    settings = settings or ServerSettings()
    registry = default_registry()
    archive = (
        Archive(
            settings.archive_path,
            ArchiveLimits(max_episodes=settings.archive_max_episodes, max_bytes=settings.archive_max_bytes),
        )
        if settings.enable_archive
        else None
    )
    store = EpisodeStore(
        registry,
        StoreLimits(
            max_episodes=settings.max_episodes,
            max_episodes_per_client=settings.max_episodes_per_client,
            idle_timeout_s=settings.episode_idle_timeout_s,
        ),
        archive=archive,
        outcome_secret=settings.outcome_secret,
        id_prefix=f"{settings.replica_name}." if settings.replica_name else "",
    )
    metadata = build_metadata()
    # openenv's create_app() picks between this app and openenv's own Gradio
    # playground (one shared environment) by reading ENABLE_WEB_INTERFACE at
    # call time. This server decides from its settings and mounts its own
    # dashboard, so it takes the API app directly.
    app: FastAPI = create_fastapi_app(
        functools.partial(WorkflowEnvironment, store, metadata),
        WorkflowAction,
        WorkflowObservation,
        concurrency_config=ConcurrencyConfig(
            max_concurrent_envs=settings.max_concurrent_envs,
            session_timeout=settings.session_idle_timeout_s,
        ),
    )
    app.title = "workflow_orchestrator"
    app.version = VERSION
    app.description = metadata.description
    app.router.routes = [route for route in app.router.routes if getattr(route, "path", None) not in REPLACED_PATHS]
    app.state.store = store
    app.state.settings = settings

    sessions = SessionEndpoint(store, metadata, settings)
    app.state.sessions = sessions
    # A raw ASGI endpoint (not a FastAPI route): no dependency injection per connection.
    app.router.routes.append(WebSocketRoute("/ws", sessions))
    add_health_route(app, sessions)
    add_episode_routes(app, store, metadata)
    add_task_routes(app, TaskCatalogue(registry), ENV_NAME)
    install_error_handlers(app)
    install_housekeeping(app, store, sessions, settings)
    app.router.on_startup.append(freeze_startup_objects)
    app.add_middleware(ClassicSchemaMiddleware, tasks=registry.list_tasks())
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(HeadMiddleware)
    # Added last, so it runs first: an unauthorised request is refused before its body is read.
    if settings.api_token:
        app.add_middleware(BearerTokenMiddleware, token=settings.api_token)
    if settings.enable_web:
        app = mount_dashboard(app, store)
    return app


async def freeze_startup_objects() -> None:
    """Move what the server made while starting (modules, the task registry, the dashboard's
    blocks) out of the garbage collector's reach: they live as long as the process, and a full
    collection then scans only what requests made (a full collection of the started server took
    90-300 ms on a loaded machine, every client waiting)."""
    gc.collect()
    gc.freeze()


def mount_dashboard(app: FastAPI, store: EpisodeStore) -> FastAPI:
    """The dashboard at ``/web``, imported only when the web UI is on.

    The dashboard module provides ``mount_dashboard(app, store) -> app``; a
    build without it runs without ``/web`` and says so.
    """
    if importlib.util.find_spec(DASHBOARD_MODULE) is None:
        logger.warning("the dashboard module is not installed; serving without /web")
        return app
    logger.info("loading the dashboard (Gradio) for /web...")
    dashboard = importlib.import_module(DASHBOARD_MODULE)
    mounted: FastAPI = dashboard.mount_dashboard(app, store)
    return mounted


# --------------------------------------------------------------------------- entry points


def main(argv: Sequence[str] | None = None) -> None:
    """The ``server`` script: ``server [--host H] [--port P] [--no-web] ...``."""
    settings = parse_settings(argv, os.environ)
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    exposure = exposure_warning(settings)
    if exposure is not None:
        logger.warning(exposure)
    # A first start takes seconds (openenv, FastAPI, Gradio): say what it is doing meanwhile.
    logger.info("loading the server (openenv, FastAPI, uvicorn)...")
    import uvicorn

    app = build_app(settings)
    tune_garbage_collector()
    logger.info("starting uvicorn on http://%s:%d", settings.host, settings.port)
    uvicorn.run(app, **uvicorn_options(settings))


def uvicorn_options(settings: ServerSettings) -> dict[str, Any]:
    """uvicorn's options for ``settings`` (its address, limits and logging), as ``uvicorn.run`` and
    ``uvicorn.Config`` take them."""
    from workflow_orchestrator.server.http.protocol import protocol_classes

    http_protocol, ws_protocol = protocol_classes(connection_limits(settings))
    return {
        "host": settings.host,
        "port": settings.port,
        "http": http_protocol,
        "ws": ws_protocol,
        "limit_concurrency": settings.max_connections,
        "timeout_keep_alive": settings.keep_alive_timeout_s,
        "timeout_graceful_shutdown": settings.shutdown_timeout_s,
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        "ws_max_size": settings.max_body_bytes,
        "ws_per_message_deflate": settings.ws_compression,
        "access_log": settings.access_log,
        "log_level": settings.log_level,
    }


def tune_garbage_collector() -> None:
    """Keep collection pauses out of step latency.

    Everything built at start-up (modules, the app, the task registry) lives
    as long as the process, so it is frozen out of the collector's scans; a
    step allocates a few hundred short-lived containers, so the youngest
    generation is collected less often than the default every 700.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 50)


def connection_limits(settings: ServerSettings) -> ConnectionLimits:
    from workflow_orchestrator.server.http.protocol import ConnectionLimits

    return ConnectionLimits(
        max_header_bytes=settings.max_header_bytes,
        read_timeout_s=settings.request_read_timeout_s,
        send_timeout_s=settings.send_timeout_s,
        max_connections=settings.max_connections,
    )


def unbounded_uvicorn_warning(argv: Sequence[str]) -> str | None:
    """A warning when ``argv`` is uvicorn's command line without this server's protocols, else None."""
    from workflow_orchestrator.server.http.protocol import UVICORN_OPTIONS

    program = argv[0].replace("\\", "/") if argv else ""
    if not (program.endswith("/uvicorn") or program == "uvicorn" or program.endswith("uvicorn/__main__.py")):
        return None
    if any(UVICORN_OPTIONS[1] in arg for arg in argv):
        return None
    return (
        "uvicorn serves this app without the server's connection limits (header size, read and send "
        "timeouts, connection cap): start it with `server`, or add " + " ".join(UVICORN_OPTIONS)
    )


def __getattr__(name: str) -> Any:
    # ``uvicorn workflow_orchestrator.server.app:app`` (openenv.yaml's entry):
    # the app is built on first access, with settings from the environment,
    # which also set the limits of the protocol classes uvicorn may be given.
    if name == "app":
        import sys

        from workflow_orchestrator.server.http.protocol import use_limits

        settings = settings_from_environment(os.environ)
        use_limits(connection_limits(settings))
        warning = unbounded_uvicorn_warning(sys.argv)
        if warning is not None:
            logging.getLogger("uvicorn.error").warning(warning)
        application = build_app(settings)
        globals()["app"] = application
        return application
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    main()
