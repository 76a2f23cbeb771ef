"""Fixtures the emulator's platform tests share: the harness with the test-only methods, on a
frozen clock so bucket counts are exact, and an HTTP session."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from emulator.server import EmulatorConfig, RunningEmulator, run_emulator
from tests.emulator._platform import platform_methods


@pytest.fixture
async def emu() -> AsyncIterator[RunningEmulator]:
    """One seeded portal; a module that needs another config defines its own `emu`."""
    with platform_methods():
        async with run_emulator(EmulatorConfig(frozen_clock=True)) as running:
            yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session for raw calls to the emulator."""
    async with aiohttp.ClientSession() as session:
        yield session
