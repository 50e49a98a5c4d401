"""workflow_orchestrator."""
