"""Server settings: :class:`ServerSettings`, read from environment variables and the command line.

Only the standard library and the archive's defaults are imported here, so
that ``server --help`` and a bad option are answered before the web
framework is loaded. :func:`exposure_warning` says when the settings leave
every route open to the network.
"""

from __future__ import annotations

import argparse
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from workflow_orchestrator.server.archive import DEFAULT_ARCHIVE_PATH, DEFAULT_MAX_BYTES, DEFAULT_MAX_EPISODES

TOKEN_VARIABLE = "WORKFLOW_ORCHESTRATOR_TOKEN"
OUTCOME_SECRET_VARIABLE = "WORKFLOW_ORCHESTRATOR_OUTCOME_SECRET"


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Everything the server can be told; see ``server --help`` and the README."""

    host: str = "127.0.0.1"
    port: int = 8000
    enable_web: bool = True
    max_concurrent_envs: int = 64
    session_idle_timeout_s: float = 300.0
    max_episodes: int = 256
    max_episodes_per_client: int = 64
    # Episodes held by WebSocket batches (batch_reset), over all connections.
    max_batch_episodes: int = 2048
    episode_idle_timeout_s: float = 900.0
    max_body_bytes: int = 64 * 1024
    # Finished episodes are archived in this SQLite file (see archive.py), unless enable_archive is off.
    enable_archive: bool = True
    archive_path: str = DEFAULT_ARCHIVE_PATH
    archive_max_episodes: int = DEFAULT_MAX_EPISODES
    archive_max_bytes: int = DEFAULT_MAX_BYTES
    # Connections (server/http/protocol.py): set here rather than left to whoever deploys.
    max_header_bytes: int = 32 * 1024
    request_read_timeout_s: float = 15.0
    send_timeout_s: float = 20.0
    max_connections: int = 512
    keep_alive_timeout_s: float = 5.0
    shutdown_timeout_s: float = 10.0
    api_token: str | None = field(default=None, repr=False)
    # Seals every episode: attempt outcomes and hidden draws keyed by this secret
    # as well as the seed (see WorkflowEnv). None: unsealed, predictable from the seed.
    outcome_secret: str | None = field(default=None, repr=False)
    # permessage-deflate costs more CPU per step than it saves on a fast
    # link; worth turning on only for clients far away.
    ws_compression: bool = False
    access_log: bool = False
    log_level: str = "info"
    # One replica of several behind a router (workflow_orchestrator.cluster): the episode ids it
    # makes start with "<replica_name>." so that the router forwards a request to it.
    replica_name: str | None = None


# Environment variables, read by settings_from_environment() (never at import).
_VARIABLES: dict[str, tuple[str, type]] = {
    "ENABLE_WEB_INTERFACE": ("enable_web", bool),
    "WORKFLOW_ORCHESTRATOR_MAX_SESSIONS": ("max_concurrent_envs", int),
    "WORKFLOW_ORCHESTRATOR_SESSION_IDLE_TIMEOUT": ("session_idle_timeout_s", float),
    "WORKFLOW_ORCHESTRATOR_MAX_EPISODES": ("max_episodes", int),
    "WORKFLOW_ORCHESTRATOR_MAX_EPISODES_PER_CLIENT": ("max_episodes_per_client", int),
    "WORKFLOW_ORCHESTRATOR_MAX_BATCH_EPISODES": ("max_batch_episodes", int),
    "WORKFLOW_ORCHESTRATOR_ARCHIVE": ("enable_archive", bool),
    "WORKFLOW_ORCHESTRATOR_ARCHIVE_PATH": ("archive_path", str),
    "WORKFLOW_ORCHESTRATOR_ARCHIVE_MAX_EPISODES": ("archive_max_episodes", int),
    "WORKFLOW_ORCHESTRATOR_ARCHIVE_MAX_BYTES": ("archive_max_bytes", int),
    "WORKFLOW_ORCHESTRATOR_EPISODE_IDLE_TIMEOUT": ("episode_idle_timeout_s", float),
    "WORKFLOW_ORCHESTRATOR_MAX_BODY_BYTES": ("max_body_bytes", int),
    "WORKFLOW_ORCHESTRATOR_MAX_HEADER_BYTES": ("max_header_bytes", int),
    "WORKFLOW_ORCHESTRATOR_READ_TIMEOUT": ("request_read_timeout_s", float),
    "WORKFLOW_ORCHESTRATOR_SEND_TIMEOUT": ("send_timeout_s", float),
    "WORKFLOW_ORCHESTRATOR_MAX_CONNECTIONS": ("max_connections", int),
    "WORKFLOW_ORCHESTRATOR_KEEP_ALIVE_TIMEOUT": ("keep_alive_timeout_s", float),
    "WORKFLOW_ORCHESTRATOR_SHUTDOWN_TIMEOUT": ("shutdown_timeout_s", float),
    TOKEN_VARIABLE: ("api_token", str),
    OUTCOME_SECRET_VARIABLE: ("outcome_secret", str),
    "WORKFLOW_ORCHESTRATOR_REPLICA_NAME": ("replica_name", str),
}


def settings_from_environment(environ: Mapping[str, str], base: ServerSettings | None = None) -> ServerSettings:
    """Settings from environment variables (unset ones keep ``base``'s values)."""
    values: dict[str, Any] = {}
    for variable, (name, kind) in _VARIABLES.items():
        raw = environ.get(variable)
        if raw is None or raw == "":
            continue
        if kind is bool:
            values[name] = raw.strip().lower() in ("1", "true", "yes", "on")
        else:
            try:
                values[name] = kind(raw)
            except ValueError:
                raise SystemExit(f"{variable}={raw!r} is not a valid {kind.__name__}") from None
    return replace(base or ServerSettings(), **values)


def parse_settings(argv: Sequence[str] | None, environ: Mapping[str, str]) -> ServerSettings:
    """Command-line options over environment variables over defaults."""
    defaults = settings_from_environment(environ)
    parser = argparse.ArgumentParser(prog="server", description="Run the workflow_orchestrator server.")
    parser.add_argument("--host", default=defaults.host, help="address to bind (default %(default)s)")
    parser.add_argument("--port", type=int, default=defaults.port, help="port (default %(default)s)")
    web = parser.add_mutually_exclusive_group()
    web.add_argument(
        "--web",
        dest="enable_web",
        action="store_true",
        default=defaults.enable_web,
        help="serve the dashboard at /web (the default)",
    )
    web.add_argument("--no-web", dest="enable_web", action="store_false", help="no dashboard")
    parser.add_argument(
        "--max-sessions",
        dest="max_concurrent_envs",
        type=int,
        default=defaults.max_concurrent_envs,
        help="concurrent WebSocket sessions (default %(default)s)",
    )
    parser.add_argument(
        "--session-idle-timeout",
        dest="session_idle_timeout_s",
        type=float,
        default=defaults.session_idle_timeout_s,
        help="seconds before an idle WebSocket session is closed (default %(default)s)",
    )
    parser.add_argument(
        "--max-episodes",
        type=int,
        default=defaults.max_episodes,
        help="episodes kept in the store (default %(default)s)",
    )
    parser.add_argument(
        "--max-episodes-per-client",
        type=int,
        default=defaults.max_episodes_per_client,
        help="episodes one client (network address) keeps in the store (default %(default)s)",
    )
    parser.add_argument(
        "--max-batch-episodes",
        type=int,
        default=defaults.max_batch_episodes,
        help="episodes held by WebSocket batches (batch_reset), all connections together (default %(default)s)",
    )
    archive = parser.add_mutually_exclusive_group()
    archive.add_argument(
        "--archive-path",
        default=defaults.archive_path,
        help="SQLite file of finished episodes (default %(default)s)",
    )
    archive.add_argument(
        "--no-archive", dest="enable_archive", action="store_false", help="keep no archive of finished episodes"
    )
    parser.set_defaults(enable_archive=defaults.enable_archive)
    parser.add_argument(
        "--archive-max-episodes",
        type=int,
        default=defaults.archive_max_episodes,
        help="finished episodes the archive keeps, the oldest out first (default %(default)s)",
    )
    parser.add_argument(
        "--archive-max-bytes",
        type=int,
        default=defaults.archive_max_bytes,
        help="bytes of JSON the archive keeps, the oldest out first (default %(default)s)",
    )
    parser.add_argument(
        "--episode-idle-timeout",
        dest="episode_idle_timeout_s",
        type=float,
        default=defaults.episode_idle_timeout_s,
        help="seconds before an idle episode is dropped (default %(default)s)",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=defaults.max_body_bytes,
        help="largest request body or WebSocket message (default %(default)s)",
    )
    parser.add_argument(
        "--max-header-bytes",
        type=int,
        default=defaults.max_header_bytes,
        help="largest request line and headers; larger ones get 431 (default %(default)s)",
    )
    parser.add_argument(
        "--read-timeout",
        dest="request_read_timeout_s",
        type=float,
        default=defaults.request_read_timeout_s,
        help="seconds for a request to arrive whole, and for a new connection's first byte (default %(default)s)",
    )
    parser.add_argument(
        "--send-timeout",
        dest="send_timeout_s",
        type=float,
        default=defaults.send_timeout_s,
        help="seconds a client may leave our answer unread before it is disconnected (default %(default)s)",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=defaults.max_connections,
        help="open connections, HTTP and WebSocket; more get 503 (default %(default)s)",
    )
    parser.add_argument(
        "--keep-alive-timeout",
        dest="keep_alive_timeout_s",
        type=float,
        default=defaults.keep_alive_timeout_s,
        help="seconds an idle keep-alive connection stays open (default %(default)s)",
    )
    parser.add_argument(
        "--shutdown-timeout",
        dest="shutdown_timeout_s",
        type=float,
        default=defaults.shutdown_timeout_s,
        help="seconds SIGTERM waits for open connections before it cancels them (default %(default)s)",
    )
    parser.add_argument(
        "--ws-compression", action="store_true", default=defaults.ws_compression, help="offer permessage-deflate on /ws"
    )
    parser.add_argument(
        "--outcome-secret",
        default=defaults.outcome_secret,
        help=(
            "seal every episode with this secret: outcomes, outages, traps and dropouts keyed by it as well as "
            f"the seed (evaluations must seal; prefer ${OUTCOME_SECRET_VARIABLE}, which ps does not show)"
        ),
    )
    parser.add_argument(
        "--replica-name",
        default=defaults.replica_name,
        help="this server is one replica behind a router: the episode ids it makes start with NAME and a dot",
    )
    parser.add_argument("--access-log", action="store_true", default=defaults.access_log, help="log every request")
    parser.add_argument(
        "--log-level", default=defaults.log_level, choices=["critical", "error", "warning", "info", "debug"]
    )
    args = parser.parse_args(argv)
    settings = replace(defaults, **vars(args))
    for name in (
        "max_concurrent_envs",
        "max_episodes",
        "max_episodes_per_client",
        "max_batch_episodes",
        "max_body_bytes",
        "archive_max_episodes",
        "archive_max_bytes",
        "max_header_bytes",
        "max_connections",
    ):
        if getattr(settings, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    for name in (
        "session_idle_timeout_s",
        "episode_idle_timeout_s",
        "request_read_timeout_s",
        "send_timeout_s",
        "keep_alive_timeout_s",
        "shutdown_timeout_s",
    ):
        if getattr(settings, name) <= 0:
            parser.error(f"{name} must be positive")
    if settings.replica_name is not None and not valid_replica_name(settings.replica_name):
        parser.error("--replica-name must be 1 to 16 lower-case letters, digits or dashes")
    return settings


def valid_replica_name(name: str) -> bool:
    """A replica's name: 1 to 16 of a-z, 0-9 and '-' (it starts the ids of its episodes, before a dot)."""
    return 1 <= len(name) <= 16 and all(c in "abcdefghijklmnopqrstuvwxyz0123456789-" for c in name)


def exposure_warning(settings: ServerSettings) -> str | None:
    """What to say at start when the server listens beyond loopback without a token (None: nothing)."""
    if settings.api_token:
        return None
    host = settings.host.strip("[]")
    if host == "localhost":
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass  # a host name: it may resolve to anything
    return (
        f"listening on {settings.host} without a token: anyone who can reach this port can use every route. "
        f"Set {TOKEN_VARIABLE} (or bind 127.0.0.1)"
    )
