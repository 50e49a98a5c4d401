"""The router on uvicorn: ``server-router`` (the command) and :class:`RouterThread` (from Python).

``server-router --ray-replicas 2`` starts two replicas on Ray (a local
cluster, or the one ``--ray-address`` / ``RAY_ADDRESS`` names) and serves the
router on ``--host``/``--port``; every other option is the ``server``'s and
goes to the replicas (``server-router --ray-replicas 2 --max-sessions 128
--no-archive``). ``server-router --replica r0=http://10.0.0.5:8000 --replica
r1=http://10.0.0.6:8000`` routes to servers started elsewhere, each with
``--replica-name`` its name.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any

from workflow_orchestrator.cluster.router import ReplicaSource, Router, StaticReplicas
from workflow_orchestrator.server.http.settings import parse_settings, valid_replica_name

logger = logging.getLogger("workflow_orchestrator.cluster")


def router_config(router: Router, host: str, port: int, log_level: str = "warning", **extra: Any) -> Any:
    """uvicorn's configuration for the router: uvloop, and the server's own bounded protocols
    (header size, read and send timeouts, connection cap; see ``server/http/protocol.py``)."""
    import uvicorn

    from workflow_orchestrator.server.http.protocol import ConnectionLimits, protocol_classes

    limits = ConnectionLimits(max_connections=4096)
    http_protocol, ws_protocol = protocol_classes(limits)
    return uvicorn.Config(
        router,
        host=host,
        port=port,
        loop="uvloop",
        http=http_protocol,
        ws=ws_protocol,
        limit_concurrency=limits.max_connections,
        lifespan="on",
        log_level=log_level,
        access_log=False,
        ws_max_size=router.max_message_bytes,
        ws_per_message_deflate=False,
        **extra,
    )


class RouterThread:
    """The router served on a thread of this process (for Python programs, tests and benches).

    ``port=0`` picks a free port; :attr:`url` says which. :meth:`start`
    returns once the router listens and ``ready`` replicas (default: all) are
    live.
    """

    def __init__(self, source: ReplicaSource, host: str = "127.0.0.1", port: int = 0, **router_options: Any) -> None:
        import uvicorn

        self.router = Router(source, **router_options)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, port))
        self.host = host
        self.port = self.listener.getsockname()[1]
        self.server = uvicorn.Server(router_config(self.router, host, self.port))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.listener]}, name="router", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, ready: int | None = None, timeout_s: float = 60.0) -> RouterThread:
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the router did not start")
            time.sleep(0.01)
        wanted = len(self.router.replicas) if ready is None else ready
        while len(self.router.live()) < wanted:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.router.live())} of {wanted} replicas live after {timeout_s:g} s")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)

    def __enter__(self) -> RouterThread:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def parse_replica(text: str) -> tuple[str, str]:
    name, equals, url = text.partition("=")
    if not equals or not valid_replica_name(name) or "://" not in url:
        raise argparse.ArgumentTypeError(f"{text!r}: give NAME=URL, e.g. r0=http://10.0.0.5:8000")
    return name, url


def main(argv: Sequence[str] | None = None) -> None:
    """``server-router``: the router, over replicas on Ray or at fixed URLs (see the module's docstring)."""
    parser = argparse.ArgumentParser(
        prog="server-router",
        description="Serve the router over server replicas (on Ray, or at fixed URLs). "
        "Options not listed here are the server's, given to every replica (see server --help).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="the router's address (default %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="the router's port (default %(default)s)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--ray-replicas", type=int, metavar="N", help="start N replicas as Ray actors")
    where.add_argument(
        "--replica", dest="replicas", action="append", type=parse_replica, metavar="NAME=URL", help="a replica"
    )
    parser.add_argument(
        "--ray-address",
        default=os.environ.get("RAY_ADDRESS"),
        help="the Ray cluster (ray://host:10001, auto; default $RAY_ADDRESS, else a local cluster)",
    )
    parser.add_argument("--replica-cpus", type=float, default=1.0, help="CPUs each replica reserves (default 1)")
    parser.add_argument(
        "--ray-cpus", type=int, default=None, help="CPUs of a local cluster started here (default: all)"
    )
    parser.add_argument(
        "--health-interval", type=float, default=0.5, help="seconds between health checks (default %(default)s)"
    )
    parser.add_argument(
        "--ws-redirect",
        action="store_true",
        help="send each new WebSocket session to its replica with a redirect (307) instead of relaying its frames: "
        "no cost per step, but clients must reach the replicas' addresses",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"], help="router's"
    )
    args, rest = parser.parse_known_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    settings = parse_settings(rest, os.environ)
    source: ReplicaSource
    ray_replicas = None
    if args.ray_replicas is not None:
        if args.ray_replicas < 1:
            parser.error("--ray-replicas must be at least 1")
        from workflow_orchestrator.cluster.replicas import RayReplicas

        logger.info("starting %d replicas on Ray...", args.ray_replicas)
        ray_replicas = RayReplicas(
            args.ray_replicas,
            settings,
            address=args.ray_address,
            replica_cpus=args.replica_cpus,
            num_cpus=args.ray_cpus,
        ).start()
        source = ray_replicas
    else:
        source = StaticReplicas(dict(args.replicas))
    import uvicorn

    router = Router(source, health_interval_s=args.health_interval, ws_redirect=args.ws_redirect)
    try:
        logger.info("router on http://%s:%d", args.host, args.port)
        uvicorn.Server(router_config(router, args.host, args.port, args.log_level)).run()
    finally:
        if ray_replicas is not None:
            ray_replicas.stop()


if __name__ == "__main__":
    main()
