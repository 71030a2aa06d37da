"""Deprecated: outcomes are classified in :mod:`buttress.policies.outcomes`.

Examples:
    >>> import pytest
    >>> from buttress.policies import failures, outcomes
    >>> with pytest.deprecated_call(match="import it from buttress.policies.outcomes"):
    ...     failures.is_transient is outcomes.is_transient
    True
"""

from .._lazy import moved

__getattr__ = moved(
    __name__,
    "buttress.policies.outcomes",
    ("TRANSIENT_ERRORS", "is_connect_failure", "is_transient"),
)
