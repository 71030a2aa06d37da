"""Throughput and overhead of buttress against bare httpx, aiohttp and requests.

Run ``python -m benchmarks [--full]``, and ``python -m benchmarks.minimal`` in an
environment with nothing but buttress installed; see docs/performance.md.
"""
