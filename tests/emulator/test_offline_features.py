"""`feature.get` (rest/classes/general/rest_provider.php `getFeature`) and the licence checks
it reports: `rest_offline_extended` for reserving offline rows, `rest_auth_connector` for the
`auth_connector` parameter (rest/classes/general/rest.php)."""

from __future__ import annotations

import aiohttp

from tests.emulator._offline import control, emulator_and_receiver, ok, rest


async def test_feature_get_on_a_cloud_portal() -> None:
    async with aiohttp.ClientSession() as http, emulator_and_receiver() as (emu, _):
        for code in ("rest_offline_extended", "rest_auth_connector"):
            assert await ok(http, emu, "feature.get", {"CODE": code}) == {"value": "Y"}
        assert await ok(http, emu, "feature.get", {"code": "no_such_feature"}) == {"value": "N"}
        status, body = await rest(http, emu, "feature.get", {})
        assert (status, body["error"], body["error_description"]) == (
            400,
            "CODE_EMPTY",
            "CODE can't be empty",
        )
        # Any user, any auth: a webhook too.
        async with http.post(
            f"{emu.credentials['webhook_url']}feature.get", json={"CODE": "rest_auth_connector"}
        ) as resp:
            assert (await resp.json())["result"] == {"value": "Y"}


async def test_features_are_per_portal_and_configurable() -> None:
    async with (
        aiohttp.ClientSession() as http,
        emulator_and_receiver(features={"rest_offline_extended": "N"}) as (emu, _),
    ):
        assert await ok(http, emu, "feature.get", {"CODE": "rest_offline_extended"}) == {
            "value": "N"
        }
        status, body = await rest(http, emu, "event.offline.get", {"clear": 0})
        assert (status, body["error"]) == (403, "WRONG_LICENSE")
        await control(http, emu, "features", {"values": {"rest_offline_extended": ""}})
        assert await ok(http, emu, "feature.get", {"CODE": "rest_offline_extended"}) == {
            "value": ""
        }
        status, body = await rest(http, emu, "event.offline.get", {"clear": 0})
        assert status == 403  # anything but "Y" is "not available" on the cloud


async def test_a_self_hosted_portal_never_refuses_and_answers_selfhosted() -> None:
    async with (
        aiohttp.ClientSession() as http,
        emulator_and_receiver(self_hosted=True) as (emu, _),
    ):
        value = await ok(http, emu, "feature.get", {"CODE": "rest_offline_extended"})
        assert value == {"value": "en_selfhosted"}
        reserved = await ok(http, emu, "event.offline.get", {"clear": 0}, connector="X")
        assert len(reserved["process_id"]) == 32


async def test_auth_connector_needs_its_licence() -> None:
    async with aiohttp.ClientSession() as http, emulator_and_receiver() as (emu, _):
        bind = {"event": "OnSessionStart", "event_type": "offline"}
        assert await ok(http, emu, "event.bind", bind, connector="X")
        await control(http, emu, "features", {"values": {"rest_auth_connector": "N"}})
        status, body = await rest(http, emu, "event.offline.list", connector="X")
        assert (status, body["error"]) == (403, "WRONG_LICENSE")
        assert body["error_description"].endswith("auth_connector")
        status, body = await rest(http, emu, "event.offline.list")
        assert status == 200
        batch = {"cmd": {"a": "event.offline.list"}, "auth_connector": "X"}
        status, body = await rest(http, emu, "batch", batch)
        assert (status, body["error"]) == (403, "WRONG_LICENSE")
