"""The proving tools: the demo, the benchmarks and chaos, and what they share (a whole stack on
one machine, simulated people). Not part of the product wheel; `orchestrator demo|bench|chaos`
find them in a checkout."""

__all__: list[str] = []
