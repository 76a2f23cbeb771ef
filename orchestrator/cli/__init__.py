"""The `orchestrator` command: the composition root (main.py) and one module per command group."""

from orchestrator.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
