"""The production dialog handler: the machine decides, the executor acts on the portal
(with the resend rule and the lead step)."""

from orchestrator.handler.executor import EffectExecutor
from orchestrator.handler.handler import DialogMachineHandler, build_handler

__all__ = [
    "DialogMachineHandler",
    "EffectExecutor",
    "build_handler",
]
