"""What the fleet tests read straight from the Redis server."""

from __future__ import annotations

import redis


def scripts_run(url: str) -> int:
    """How many scripts the Redis server at ``url`` has run since it started."""
    with redis.Redis.from_url(url) as direct:
        stats = direct.info("commandstats")
    counts = [stats.get(f"cmdstat_{name}", {}) for name in ("evalsha", "eval")]
    # A call answered NOSCRIPT ran nothing (redis-py then loads the script, once).
    return sum(c.get("calls", 0) - c.get("failed_calls", 0) for c in counts)


def time_to_live(url: str, namespace: str) -> dict[str, int]:
    """Every key of ``namespace`` with its time to live in milliseconds (-1: none)."""
    with redis.Redis.from_url(url) as direct:
        keys = direct.scan_iter(match=f"buttress:{{{namespace}}}:*")
        return {key.decode(): direct.pttl(key) for key in keys}
