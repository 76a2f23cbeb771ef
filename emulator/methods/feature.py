"""`feature.get` (rest/classes/general/rest_provider.php `getFeature`): whether the portal's
licence has a feature, as "Y"/"N" — or, on a self-hosted portal, `<lang>_selfhosted` for a code
nobody claims (emulator.features). Global scope, any user, any auth."""

from __future__ import annotations

from typing import Any

from emulator.methods._common import php_empty
from emulator.primitives import RestError
from emulator.registry import CallContext, method


@method("feature.get", scope="basic", keys_normalised=True)
def feature_get(ctx: CallContext, params: dict[str, Any]) -> dict[str, str]:
    """{"value": "Y"|"N"|…} for CODE; an empty CODE is 400 CODE_EMPTY."""
    code = params.get("CODE")
    if php_empty(code):
        raise RestError("CODE_EMPTY", "CODE can't be empty")
    return {"value": ctx.portal.features.value(str(code))}
