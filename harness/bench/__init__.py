"""Benchmarks run as commands (`orchestrator bench ...`), never as tests.

This module only declares flags (argparse, cheap to import); the work lives in the submodules.
"""

from __future__ import annotations

import argparse

__all__ = ["add_client_arguments", "add_ingress_arguments"]


def add_client_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `orchestrator bench client`."""
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds")
    parser.add_argument(
        "--warmup",
        type=float,
        default=5.0,
        help="seconds before the window, in which the initial burst is spent",
    )
    parser.add_argument("--processes", type=int, default=4, help="worker processes (K)")
    parser.add_argument(
        "--concurrency", type=int, default=100, help="concurrent callers per process"
    )
    parser.add_argument("--plan", choices=["standard", "enterprise"], default="standard")
    parser.add_argument("--method", default="user.get", help="the read method every call uses")
    parser.add_argument("--no-peers", action="store_true", help="skip fast_bitrix24")
    parser.add_argument("--redis-url", default=None, help="default: REDIS_URL, else embedded")
    parser.add_argument("--output", default="bench-client.json", help="the JSON report")


def add_ingress_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `orchestrator bench ingress`."""
    parser.add_argument(
        "--duration", type=float, default=3.0, help="measured seconds per server and round"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds; each server's median counts")
    parser.add_argument("--connections", type=int, default=64, help="concurrent client connections")
    parser.add_argument(
        "--generator",
        choices=["auto", "wrk", "python"],
        default="auto",
        help="closed-loop load from wrk (cheap: not the ceiling) or aiohttp; auto: wrk if found",
    )
    parser.add_argument("--dispatch-rate", type=float, default=200.0, help="events/s for latency")
    parser.add_argument("--dispatch-seconds", type=float, default=5.0)
    parser.add_argument("--redis-url", default=None, help="default: REDIS_URL, else embedded")
    parser.add_argument("--output", default="bench-ingress.json")
