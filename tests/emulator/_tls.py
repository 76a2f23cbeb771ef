"""A loopback TLS front for the emulator, for clients that only speak https.

The emulator serves plain http; some clients (b24pysdk builds `https://{domain}/rest/...` with the
scheme fixed) cannot be pointed at it. This front listens with TLS on 127.0.0.1 and pipes every
byte to the emulator unchanged, so the client stays unmodified. Its certificate is self-signed
for IP 127.0.0.1, made by the `openssl` command (the test is skipped without it); the client
trusts it the ordinary way, e.g. `REQUESTS_CA_BUNDLE` for `requests`."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from yarl import URL


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """(certificate, key) for IP 127.0.0.1, valid one day."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a loopback TLS certificate")
    cert, key = folder / "loopback.crt", folder / "loopback.key"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


@asynccontextmanager
async def tls_front(target: str, cert: Path, key: Path) -> AsyncIterator[int]:
    """Serve TLS on 127.0.0.1 (a free port, yielded) in front of the http base URL `target`."""
    upstream = URL(target)
    host, port = upstream.host, upstream.port
    if upstream.scheme != "http" or host is None or port is None:
        raise ValueError(f"not a plain-http base URL: {target!r}")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    live: set[asyncio.Task[Any] | None] = set()
    writers: list[asyncio.StreamWriter] = []

    async def serve(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        me = asyncio.current_task()
        live.add(me)
        writers.append(client_w)
        try:
            up_r, up_w = await asyncio.open_connection(host, port)
            writers.append(up_w)
            await asyncio.gather(_pipe(client_r, up_w), _pipe(up_r, client_w))
        except OSError:
            client_w.close()
        finally:
            live.discard(me)

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        handlers = [task for task in live if task is not None]
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()
        # A TLS close waits for the peer's close_notify (up to 30 s); a test does not: drop
        # every socket now, while the loop still runs to close them.
        for writer in writers:
            writer.transport.abort()
        await asyncio.sleep(0)
