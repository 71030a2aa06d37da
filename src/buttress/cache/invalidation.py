"""Deprecated: the class ``Cache`` is in :mod:`buttress.cache.cache` (``buttress.cache.Cache``).

Examples:
    >>> import pytest
    >>> import buttress.cache
    >>> from buttress.cache import invalidation
    >>> with pytest.deprecated_call(match="import it from buttress.cache"):
    ...     invalidation.Cache is buttress.cache.Cache
    True
"""

from .._lazy import moved

__getattr__ = moved(__name__, "buttress.cache", ("Cache",))
