"""The ingress: verify -> persist -> 200 (intake, install verification, the portal registry),
the spool for a Redis outage, and the connection limits it is served with."""

from orchestrator.ingress.app import IngressServer, build_app, start_ingress
from orchestrator.ingress.install import InstallVerifier
from orchestrator.ingress.intake import Intake
from orchestrator.ingress.portals import Portal, Portals
from orchestrator.ingress.spool import Spool

__all__ = [
    "IngressServer",
    "InstallVerifier",
    "Intake",
    "Portal",
    "Portals",
    "Spool",
    "build_app",
    "start_ingress",
]
