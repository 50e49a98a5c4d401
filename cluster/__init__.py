"""Several server replicas behind one router (the ``ray`` extra for replicas on Ray).

* :mod:`.router`: the router (:class:`Router`, raw ASGI) and fixed replica
  lists (:class:`StaticReplicas`);
* :mod:`.replicas`: replicas as Ray actors (:class:`~.replicas.RayReplicas`),
  imported only when used, since Ray is an optional extra;
* :mod:`.serve`: the router on uvicorn, in the foreground
  (``server-router``) or on a thread (:class:`RouterThread`).

This package sits above the server: the server never imports it.
"""

from workflow_orchestrator.cluster.router import ReplicaAddress, ReplicaError, Router, StaticReplicas
from workflow_orchestrator.cluster.serve import RouterThread

__all__ = ["ReplicaAddress", "ReplicaError", "Router", "RouterThread", "StaticReplicas"]
