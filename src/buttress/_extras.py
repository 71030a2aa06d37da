"""Optional dependencies: imported when a feature first needs them, or a clear error.

Each extra of the package (``buttress[redis]``, ``buttress[memcached]``...) is
imported on first use, so ``import buttress`` never needs it; a program that asks
for the feature without the extra installed gets a :class:`ConfigurationError`
that names the ``pip install`` line, not a bare :class:`ImportError`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ._exceptions import ConfigurationError

__all__ = ["import_extra"]


def import_extra(*modules: str, needed_by: str, package: str, extra: str) -> ModuleType:
    """The first of ``modules``, after importing them all; or the error naming ``extra``.

    Examples:
        >>> import_extra("json", needed_by="JSON", package="json", extra="json").__name__
        'json'
        >>> try:
        ...     import_extra("no_such_module", needed_by="Thing", package="thing", extra="thing")
        ... except ConfigurationError as e:
        ...     print(e)
        Thing needs thing: pip install 'buttress[thing]'
    """
    try:
        imported = [importlib.import_module(module) for module in modules]
    except ImportError as exc:
        raise ConfigurationError(
            f"{needed_by} needs {package}: pip install 'buttress[{extra}]'"
        ) from exc
    return imported[0]
