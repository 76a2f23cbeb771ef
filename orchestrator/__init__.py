"""Open Lines dialog orchestrator."""
