"""``python -m workflow_orchestrator.cluster``: the ``server-router`` command."""

from workflow_orchestrator.cluster.serve import main

main()
