"""The portal's licence features as `feature.get` reports them and as the REST server checks
them: `rest_offline_extended` (reserve/confirm mode of `event.offline.get`) and
`rest_auth_connector` (the `auth_connector` request parameter).

A cloud portal answers "Y" or "N" from its plan; a self-hosted portal (no `bitrix24` module) has
no plan: the server code answers `<lang>_selfhosted` for a code nobody claims and never refuses a
licensed call (rest/classes/general/rest_provider.php `getFeature`, rest/lib/api/event.php
`isExtendedModeEnabled`). Each portal keeps its own table so a test can take a feature away from
one portal only. Imports nothing of the emulator."""

from __future__ import annotations

from typing import Any

OFFLINE_EXTENDED = "rest_offline_extended"
AUTH_CONNECTOR = "rest_auth_connector"
# A paid cloud plan: both features on, so the reserve/confirm path is what a client meets first.
CLOUD_DEFAULTS = {OFFLINE_EXTENDED: "Y", AUTH_CONNECTOR: "Y"}
# What a self-hosted portal answers for a code no module claims (LANGUAGE_ID . '_selfhosted').
SELF_HOSTED_VALUE = "en_selfhosted"


class Features:
    """One portal's feature table: `value` is what feature.get answers, `enabled` what the
    licence checks use."""

    def __init__(self, values: dict[str, str] | None = None, *, self_hosted: bool = False) -> None:
        self.self_hosted = self_hosted
        self.values: dict[str, str] = {}
        self._reset(self_hosted)
        self.values.update(values or {})

    def _reset(self, self_hosted: bool) -> None:
        self.self_hosted = self_hosted
        self.values = {} if self_hosted else dict(CLOUD_DEFAULTS)

    def value(self, code: str) -> str:
        """feature.get's `value`: the configured string; else "N" on the cloud (an unknown
        feature is not enabled) or `en_selfhosted` on a self-hosted portal."""
        if code in self.values:
            return self.values[code]
        return SELF_HOSTED_VALUE if self.self_hosted else "N"

    def enabled(self, code: str) -> bool:
        """Whether a licence check passes: always on a self-hosted portal, else only "Y"."""
        return self.self_hosted or self.value(code) == "Y"

    def configure(self, body: dict[str, Any]) -> None:
        """Change the table: `values` (code -> string, merged), `self_hosted` (bool), `reset`
        (true: back to the defaults of the hosting before merging)."""
        unknown = set(body) - {"values", "self_hosted", "reset", "member_id"}
        if unknown:
            raise ValueError(f"unknown feature settings: {sorted(unknown)}")
        values = body.get("values", {})
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            raise ValueError("values must be an object of feature code -> string")
        self_hosted = body.get("self_hosted", self.self_hosted)
        if not isinstance(self_hosted, bool):
            raise ValueError("self_hosted must be a boolean")
        if body.get("reset") or self_hosted != self.self_hosted:
            self._reset(self_hosted)
        self.values.update({str(k): v for k, v in values.items()})

    def describe(self) -> dict[str, Any]:
        return {"self_hosted": self.self_hosted, "values": dict(sorted(self.values.items()))}
