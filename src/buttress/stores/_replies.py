"""Script replies as Python values (redis-py answers bytes unless told to decode)."""

from __future__ import annotations

__all__ = ["decoded"]


def decoded(value: object) -> str:
    """A reply as text.

    Examples:
        >>> decoded(b"open"), decoded(3)
        ('open', '3')
    """
    return value.decode() if isinstance(value, bytes) else str(value)
