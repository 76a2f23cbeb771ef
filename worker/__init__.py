"""The workers: arq wiring (settings, the drain job, the sweeper), the process supervisor and
its /metrics endpoint."""

from worker.main import DrainWorker, Supervisor, build_worker

__all__ = [
    "DrainWorker",
    "Supervisor",
    "build_worker",
]
