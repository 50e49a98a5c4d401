"""Server replicas as Ray actors (the ``ray`` extra): :class:`RayReplicas`.

Each replica is one actor with its CPU reservation (``replica_cpus``,
default 1), restarted by Ray whenever its process dies (``max_restarts=-1``).
The actor runs the whole server (``server.app.build_app`` under uvicorn, the
same settings as ``server``) on a thread of its own process, on a free port
of its node, and answers :meth:`ReplicaServer.address` with where it
listens. Its episode ids start with ``<name>-<incarnation>.``: a new four-hex
incarnation each time the actor starts, so the router tells an episode of the
replica now running from one of a process that died (``410 episode_lost``).

The cluster is the one ``address`` names (``ray://host:10001``, ``auto``),
else the one ``RAY_ADDRESS`` names, else a local one started here with
``num_cpus`` CPUs and no dashboard, shut down by :meth:`RayReplicas.stop`.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from workflow_orchestrator.cluster.router import ReplicaAddress
from workflow_orchestrator.server.http.settings import ServerSettings

STARTUP_TIMEOUT_S = 120.0
LOCAL_START_ATTEMPTS = 2


class ReplicaServer:
    """One server replica in a Ray actor's process (see the module's docstring)."""

    def __init__(self, name: str, settings: dict[str, Any], host: str | None) -> None:
        import uvicorn

        from workflow_orchestrator.server.app import build_app, tune_garbage_collector, uvicorn_options

        if host is None:
            import ray

            host = str(ray.util.get_node_ip_address())  # type: ignore[no-untyped-call,unused-ignore]
        self.name = name
        self.prefix = f"{name}-{secrets.token_hex(2)}"
        listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, 0))
        self.port = listener.getsockname()[1]
        self.host = host
        chosen = replace(ServerSettings(**settings), host=host, port=self.port, replica_name=self.prefix)
        app = build_app(chosen)
        options = uvicorn_options(chosen)
        options.pop("host")
        options.pop("port")
        self.server = uvicorn.Server(uvicorn.Config(app, **options))
        tune_garbage_collector()
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [listener]}, name=f"replica-{name}", daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"replica {name}: the server did not start")
            time.sleep(0.02)

    def address(self) -> dict[str, Any]:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return {"name": self.name, "url": f"http://{host}:{self.port}", "prefix": self.prefix, "pid": os.getpid()}

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def replica_settings(settings: ServerSettings, name: str) -> dict[str, Any]:
    """What a replica is started with: ``settings`` without the web UI, its archive a file of its own."""
    fields = asdict(replace(settings, enable_web=False))
    if settings.enable_archive:
        path = Path(settings.archive_path).absolute()
        fields["archive_path"] = str(path.with_name(f"{path.stem}-{name}{path.suffix}"))
    return fields


def _follow_uv_setting() -> None:
    """Apply ``RAY_ENABLE_UV_RUN_RUNTIME_ENV`` even when Ray was imported before it was set."""
    try:
        from ray._private import ray_constants
    except ImportError:  # another layout of Ray's internals: its own reading of the variable stands
        return
    if os.environ.get("RAY_ENABLE_UV_RUN_RUNTIME_ENV") in ("0", "false", "False"):
        ray_constants.RAY_ENABLE_UV_RUN_RUNTIME_ENV = False


class RayReplicas:
    """``count`` replicas on a Ray cluster: a :class:`~workflow_orchestrator.cluster.router.ReplicaSource`.

    ``host``: the address the replicas bind (default: 127.0.0.1 on a local
    cluster started here, else each node's address as Ray knows it).
    """

    def __init__(
        self,
        count: int,
        settings: ServerSettings | None = None,
        *,
        address: str | None = None,
        replica_cpus: float = 1.0,
        num_cpus: int | None = None,
        host: str | None = None,
        namespace: str = "workflow_orchestrator",
    ) -> None:
        if count < 1:
            raise ValueError("count: at least one replica")
        self.count = count
        self.settings = settings or ServerSettings()
        self.address_option = address or os.environ.get("RAY_ADDRESS") or None
        self.replica_cpus = replica_cpus
        self.num_cpus = num_cpus
        self.host = host
        self.namespace = namespace
        self.actors: dict[str, Any] = {}
        self._started_ray = False

    def start(self) -> RayReplicas:
        """Connect to (or start) the cluster and start the actors; returns once every replica listens."""
        # Under `uv run`, Ray would otherwise have every worker build an environment of its own from the
        # working directory (minutes); the replicas run in the environment the cluster's nodes have.
        os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
        import ray

        _follow_uv_setting()
        if not ray.is_initialized():
            if self.address_option is None:
                # Ray gives its node 30 s to register; a busy machine may need a second try.
                for attempt in range(LOCAL_START_ATTEMPTS):
                    try:
                        ray.init(
                            num_cpus=self.num_cpus if self.num_cpus is not None else os.cpu_count(),
                            include_dashboard=False,
                            namespace=self.namespace,
                            log_to_driver=False,
                        )
                        break
                    except Exception:
                        ray.shutdown()
                        if attempt == LOCAL_START_ATTEMPTS - 1:
                            raise
                self._started_ray = True
            else:
                ray.init(address=self.address_option, namespace=self.namespace, log_to_driver=False)
        host = self.host if self.host is not None else ("127.0.0.1" if self.address_option is None else None)
        actor_class = ray.remote(ReplicaServer).options(
            num_cpus=self.replica_cpus, max_restarts=-1, max_task_retries=0, max_concurrency=4
        )
        for index in range(self.count):
            name = f"r{index}"
            self.actors[name] = actor_class.remote(name, replica_settings(self.settings, name), host)
        ray.get([actor.address.remote() for actor in self.actors.values()], timeout=STARTUP_TIMEOUT_S)
        return self

    # ------------------------------------------------------------------ ReplicaSource

    def names(self) -> list[str]:
        return [f"r{index}" for index in range(self.count)]

    async def address(self, name: str) -> ReplicaAddress | None:
        actor = self.actors.get(name)
        if actor is None:
            return None
        found = await actor.address.remote()
        return ReplicaAddress(found["name"], found["url"], found["prefix"], found["pid"])

    def addresses(self) -> list[ReplicaAddress]:
        """Every replica's address now (blocking until each is up)."""
        import ray

        found = ray.get([self.actors[name].address.remote() for name in self.names()], timeout=STARTUP_TIMEOUT_S)
        return [ReplicaAddress(item["name"], item["url"], item["prefix"], item["pid"]) for item in found]

    # ------------------------------------------------------------------ faults and the end

    def kill(self, name: str, restart: bool = True) -> None:
        """Kill a replica's process at once (Ray restarts it unless ``restart`` is False)."""
        import ray

        ray.kill(self.actors[name], no_restart=not restart)

    def stop(self) -> None:
        """Stop every replica, and the cluster when it was started here."""
        import ray

        for actor in self.actors.values():
            try:
                ray.kill(actor, no_restart=True)
            except Exception:  # already gone
                pass
        self.actors.clear()
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False

    def __enter__(self) -> RayReplicas:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
