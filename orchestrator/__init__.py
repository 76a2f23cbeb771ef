"""The Open Lines dialog orchestrator: the product (see README, "Architecture").

Each package is one concept: `dialog` (the pure machine), `events` (Bitrix24 -> inputs),
`pipeline` (the durable mailbox), `ingress`, `handler` (the production dialog handler), `bitrix`
(the REST client), `redis`, `cli`, `observe` (logs, metrics); `settings` and `errors` serve all.
"""

from orchestrator.errors import OrchestratorError
from orchestrator.settings import Settings, load_settings

__all__ = [
    "OrchestratorError",
    "Settings",
    "load_settings",
]
