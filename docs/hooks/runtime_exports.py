"""Griffe, the reference pages' reader, learns the ``__all__`` a package computes.

Griffe reads ``__all__`` from the source, and a package that imports its exports on
first use (``buttress``, ``buttress.transports``) makes its ``__all__`` from its table
of exports when imported (see ``buttress._lazy``). For those, ask Python.
"""

from __future__ import annotations

import importlib
from typing import Any

import griffe


class RuntimeExports(griffe.Extension):
    """Take a module's ``__all__`` from Python when the source does not spell it out."""

    def on_module_members(self, *, mod: griffe.Module, **kwargs: Any) -> None:
        if not mod.exports and "__all__" in mod.members:  # a call griffe cannot follow
            mod.exports = list(importlib.import_module(mod.path).__all__)
