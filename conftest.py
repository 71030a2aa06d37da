"""Doctests of the package: each found in the module that defines it.

A public class or function shows its package as ``__module__`` (``buttress.Client``,
see ``buttress._lazy``), so doctest would take it for a member of ``buttress`` and skip
its examples in ``buttress/_client.py``. Here doctest asks where it was defined.
"""

from __future__ import annotations

import doctest
import types

from buttress import _lazy

_from_module = doctest.DocTestFinder._from_module  # type: ignore[attr-defined]


def _from_defining_module(
    self: doctest.DocTestFinder, module: types.ModuleType | None, object: object
) -> bool:
    home = _lazy.defined_in(object)
    if home is None or module is None:
        return _from_module(self, module, object)  # type: ignore[no-any-return]
    return module.__name__ == home


doctest.DocTestFinder._from_module = _from_defining_module  # type: ignore[attr-defined]
