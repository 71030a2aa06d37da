"""``with server:`` for every server here (and in buttress's own tests): start, then stop."""

from __future__ import annotations

from typing import TypeVar

_Self = TypeVar("_Self", bound="Serving")


class Serving:
    """Started by :meth:`start`, stopped by :meth:`stop`, or both around a ``with`` block."""

    def start(self: _Self) -> _Self:
        """Start serving; returns once requests are accepted."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop serving and wait for what served to end."""
        raise NotImplementedError

    def __enter__(self: _Self) -> _Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
