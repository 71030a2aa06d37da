"""Per-request options, carried in ``request.extensions["buttress"]``.

The facade fills a :class:`RequestOptions` from a call's keyword arguments;
every layer reads only its own field. Plain httpx users pass the same thing
with ``extensions=buttress.options(...)``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import httpx

from ._exceptions import ConfigurationError

__all__ = ["EXTENSION_KEY", "RequestOptions", "options"]

EXTENSION_KEY = "buttress"


@dataclass(frozen=True, slots=True)
class RequestOptions:
    """What a single request may override.

    Attributes:
        total_timeout: seconds for the whole logical request (all attempts).
        streamed: the caller reads the body itself (``client.stream``); layers
            must not read it for them.
        raise_for_status: the facade raises for 4xx/5xx (``None``: the client's setting).
        expected_statuses: error statuses the facade returns instead of raising.
        max_response_size: bytes of body the facade accepts (``None``: the client's
            setting, which does not apply to ``client.stream()``).

    Example:
        >>> opts = RequestOptions(total_timeout=5.0)
        >>> opts.total_timeout
        5.0
    """

    total_timeout: float | None = None
    streamed: bool = False
    raise_for_status: bool | None = None
    expected_statuses: frozenset[int] | None = None
    max_response_size: int | None = None

    @staticmethod
    def of(request: httpx.Request) -> RequestOptions:
        """The options travelling with ``request`` (defaults when it has none)."""
        found = request.extensions.get(EXTENSION_KEY)
        return found if isinstance(found, RequestOptions) else DEFAULT_OPTIONS

    def merged(self, **changes: Any) -> RequestOptions:
        """A copy with ``changes`` applied (``None`` values leave a field as is)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        return replace(self, **changes) if changes else self


DEFAULT_OPTIONS = RequestOptions()
_FIELDS = frozenset(f.name for f in fields(RequestOptions))


def options(**values: Any) -> dict[str, Any]:
    """Per-request options for a plain ``httpx`` request, as an ``extensions`` dict.

    Example:
        >>> import httpx
        >>> extensions = options(total_timeout=3)
        >>> request = httpx.Request("GET", "https://api.example.com", extensions=extensions)
        >>> RequestOptions.of(request).total_timeout
        3
    """
    unknown = set(values) - _FIELDS
    if unknown:
        raise ConfigurationError(
            f"unknown request option(s) {sorted(unknown)}; known: {sorted(_FIELDS)}"
        )
    return {EXTENSION_KEY: RequestOptions(**values)}
