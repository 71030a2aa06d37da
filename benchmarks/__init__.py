"""Throughput and overhead of buttress against bare httpx, aiohttp and requests.

Run ``python -m benchmarks [--quick]``; see docs/performance.md.
"""
