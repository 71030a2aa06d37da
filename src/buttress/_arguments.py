"""The error for a keyword argument a client, or a call, does not take."""

from __future__ import annotations

from collections.abc import Collection

from ._exceptions import ConfigurationError, wrong_kind

__all__ = ["unknown_argument"]


def unknown_argument(owner: str, name: str, known: Collection[str]) -> ConfigurationError:
    """The error for a keyword ``owner`` does not take, naming the closest one it does.

    It is a :class:`ConfigurationError` and a ``TypeError`` (what Python raises
    for an unexpected keyword), so either ``except`` catches it.

    Examples:
        >>> error = unknown_argument("Client", "retries", ["retry", "timeout"])
        >>> print(error)
        Client() got an unexpected keyword argument 'retries'; did you mean `retry=`?
        >>> isinstance(error, TypeError)
        True
    """
    from difflib import get_close_matches  # loaded by a mistake only, not by every client

    close = get_close_matches(name, known, n=1)
    hint = f"; did you mean `{close[0]}=`?" if close else ""
    message = f"{owner}() got an unexpected keyword argument {name!r}{hint}"
    return wrong_kind(message)
