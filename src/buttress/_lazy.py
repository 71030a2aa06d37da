"""Exports a package imports on first use (PEP 562).

A package ``__init__`` lists its exports by module and installs the module
``__getattr__`` and ``__dir__`` this returns; type checkers read the same
names from the package's ``if TYPE_CHECKING:`` imports instead. ``import
buttress`` thus costs about what ``import httpx`` costs, and a program pays
only for the parts it uses.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Collection, Mapping

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, Collection[str]], *, submodules: Collection[str] = ()
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """A module ``__getattr__`` and ``__dir__`` for ``package``.

    Args:
        package: the package's ``__name__``.
        exports: relative module -> the names it provides, e.g. ``{"._client": ["Client"]}``.
        submodules: subpackages that resolve as attributes without an explicit import.

    Examples:
        >>> getattr_, dir_ = lazy_exports("buttress", {"._config": ["TimeoutConfig"]})
        >>> getattr_("TimeoutConfig").__name__
        'TimeoutConfig'
        >>> "TimeoutConfig" in dir_()
        True
    """
    namespace = vars(sys.modules[package])
    where = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> object:
        if name in submodules:
            return importlib.import_module(f".{name}", package)
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value  # the next lookup finds it without calling this
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *where})

    return __getattr__, __dir__
