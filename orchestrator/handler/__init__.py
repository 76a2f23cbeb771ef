"""The production dialog handler: the machine decides, the executor acts on the portal."""

from orchestrator.handler.handler import DialogMachineHandler, build_handler

__all__ = ["DialogMachineHandler", "build_handler"]
