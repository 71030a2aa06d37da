"""A package's exports: imported on first use (PEP 562), shown under the public name.

A package ``__init__`` lists its exports by module in one table; :func:`lazy_exports`
turns the table into the module ``__getattr__`` and ``__dir__``, and :func:`names`
into ``__all__``. Type checkers read the same names from the package's ``if
TYPE_CHECKING:`` imports instead (a test checks that the two agree). ``import
buttress`` thus costs about what ``import httpx`` costs, and a program pays only for
the parts it uses.

As httpx does, every class and function a public package exports is shown as a
member of that package: ``buttress.Client``, not ``buttress._client.Client``, in
reprs, tracebacks and pickles. It is renamed as soon as its module has run, however
that module was imported (through a package's table, or by another module, as
``_client`` imports ``_response``). When a name is exported at several levels
(``buttress.MemoryCache`` and ``buttress.cache.MemoryCache``) the top one wins, so
the name a value shows does not depend on what was imported first.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import inspect
import sys
import types
import typing
import warnings
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from importlib.machinery import ModuleSpec

__all__ = ["adopt", "defined_in", "lazy_exports", "moved", "names"]

# Every table registered so far, parents before their subpackages (a package is
# imported before its subpackages): package -> {name: absolute module providing it}.
_tables: dict[str, dict[str, str]] = {}
# The same entries by the module providing them, in that order: module -> [(package, name)].
_provided_by: dict[str, list[tuple[str, str]]] = {}
# An exported class or function -> the module that defines it (``__module__`` before).
_homes: dict[object, str] = {}


def lazy_exports(
    package: str,
    exports: Mapping[str, Collection[str]],
    *,
    eager: Collection[str] = (),
    submodules: Collection[str] = (),
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """A module ``__getattr__`` and ``__dir__`` for ``package``.

    Args:
        package: the package's ``__name__``.
        exports: relative module -> the names it provides, e.g. ``{"._client": ["Client"]}``.
        eager: modules of ``exports`` imported now rather than on first use.
        submodules: subpackages that resolve as attributes without an explicit import.

    Examples:
        >>> import buttress.transports
        >>> getattr_, dir_ = lazy_exports("buttress.transports", {".retry": ["RetryTransport"]})
        >>> getattr_("RetryTransport")
        <class 'buttress.transports.RetryTransport'>
        >>> "RetryTransport" in dir_()
        True
    """
    _watch_imports(package.partition(".")[0])
    namespace = vars(sys.modules[package])
    where = {name: module for module, provided in exports.items() for name in provided}
    _register(
        package,
        {name: _absolute(module, package) for name, module in where.items()},
    )
    for module in eager:
        imported = importlib.import_module(module, package)
        namespace.update({name: getattr(imported, name) for name in exports[module]})
    _adopt_imported()

    def __getattr__(name: str) -> object:
        if name in submodules:
            return importlib.import_module(f".{name}", package)
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        _adopt_imported()
        namespace[name] = value  # the next lookup finds it without calling this
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *where})

    return __getattr__, __dir__


def moved(module: str, home: str, names: Collection[str]) -> Callable[[str], object]:
    """A module ``__getattr__`` for ``names`` that now live in ``home``: deprecated aliases.

    Code written against a released import path keeps working, warned with a
    ``DeprecationWarning`` that names the new place.

    Examples:
        >>> import warnings
        >>> getattr_ = moved("buttress.cache.invalidation", "buttress.cache", ["Cache"])
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     getattr_("Cache")
        <class 'buttress.Cache'>
        >>> print(caught[0].message)
        buttress.cache.invalidation.Cache is deprecated: import it from buttress.cache
    """

    def __getattr__(name: str) -> object:
        if name not in names:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        warnings.warn(
            f"{module}.{name} is deprecated: import it from {home}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(home), name)

    return __getattr__


def _absolute(module: str, package: str) -> str:
    """The absolute name of ``module``, relative to ``package`` as an import would read it.

    What ``importlib.util.resolve_name`` does, without loading ``importlib.util`` (and
    the abstract classes it brings), which nothing else ``import buttress`` runs needs.

    Examples:
        >>> _absolute("._client", "buttress"), _absolute("..cache", "buttress.transports")
        ('buttress._client', 'buttress.cache')
    """
    name = module.lstrip(".")
    dots = len(module) - len(name)
    if not dots:
        return module
    base = package.rsplit(".", dots - 1)[0]
    return f"{base}.{name}" if name else base


def names(exports: Mapping[str, Collection[str]], *also: str) -> list[str]:
    """``__all__`` for a table of :func:`lazy_exports`, with names the package defines itself.

    Examples:
        >>> names({"._b": ["B", "A"], "._c": ["C"]}, "Z")
        ['A', 'B', 'C', 'Z']
    """
    return sorted({*also, *(name for provided in exports.values() for name in provided)})


def adopt(package: str, exported: Iterable[str]) -> None:
    """Show the names a package imported eagerly (its ``__all__``) as its own.

    Examples:
        >>> import buttress.cache
        >>> adopt("buttress.cache", ["StatsRecorder"])  # as buttress.cache's __init__ does
        >>> buttress.cache.StatsRecorder
        <class 'buttress.cache.StatsRecorder'>
    """
    _register(package, dict.fromkeys(exported, package))
    _adopt_imported()


def _register(package: str, where: Mapping[str, str]) -> None:
    """Add ``package``'s exports (name -> absolute module) to the tables."""
    _tables.setdefault(package, {}).update(where)
    for name, module in where.items():
        _provided_by.setdefault(module, []).append((package, name))


def defined_in(value: object) -> str | None:
    """The module that defines an exported class or function (``None`` for others).

    Examples:
        >>> import buttress
        >>> buttress.NotFoundError.__module__, defined_in(buttress.NotFoundError)
        ('buttress', 'buttress._exceptions')
    """
    try:
        return _homes.get(value)
    except TypeError:  # unhashable: not a class or a function
        return None


class _AdoptWhenLoaded:
    """Finds the package's modules as Python does; each adopts the exports once it has run."""

    def __init__(self, root: str) -> None:
        self.prefix = f"{root}."

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> ModuleSpec | None:
        if not name.startswith(self.prefix):
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        loader = spec.loader if spec is not None else None
        if not isinstance(loader, importlib.machinery.SourceFileLoader):
            return None  # another kind of file: Python's finders import it as usual
        spec.loader = _AdoptingLoader(loader.name, loader.path)  # type: ignore[union-attr]
        return spec


class _AdoptingLoader(importlib.machinery.SourceFileLoader):
    def exec_module(self, module: types.ModuleType) -> None:
        super().exec_module(module)
        _adopt_from(module)


def _watch_imports(root: str) -> None:
    """Adopt exports as their modules load, from now on (once per process)."""
    if any(isinstance(finder, _AdoptWhenLoaded) for finder in sys.meta_path):
        return
    finders, python = sys.meta_path, importlib.machinery.PathFinder
    # Before Python's own path finder, after any hook placed in front of it (pytest's).
    where = finders.index(python) if python in finders else len(finders)
    finders.insert(where, _AdoptWhenLoaded(root))


def _adopt_imported() -> None:
    """Give each export whose module is imported its public ``__module__``.

    Never imports: a module not imported yet is adopted by a later call.
    """
    for package, where in _tables.items():
        for name, module in where.items():
            source = sys.modules.get(module)
            # vars(), not getattr(): a lazy module's __getattr__ would import
            if source is not None:
                _adopt_found(vars(source).get(name), package)


def _adopt_from(module: types.ModuleType) -> None:
    """Adopt the exports ``module`` provides, once it has run.

    Only its own entries: every other module's were looked at when that module
    ran or its table was registered, so a scan of them all on every import (as
    a package's modules load, one after another) would find nothing new.
    """
    namespace = vars(module)
    for package, name in _provided_by.get(module.__name__, ()):
        _adopt_found(namespace.get(name), package)


def _adopt_found(value: object, package: str) -> None:
    if isinstance(value, (type, types.FunctionType)) and value not in _homes:
        _adopt(value, package)


def _adopt(value: type | types.FunctionType, package: str) -> None:
    home = value.__module__
    if home.partition(".")[0] != package.partition(".")[0]:
        return  # not ours: httpx.Request, httpx-sse's ServerSentEvent
    _homes[value] = home
    if isinstance(value, type):
        _resolve_annotations_in(value, home)
    value.__module__ = package


def _resolve_annotations_in(cls: type, module: str) -> None:
    """Keep ``typing.get_type_hints`` finding a class's annotations where it was written.

    It looks names up in the module that ``__module__`` names; a string annotation
    becomes a forward reference that carries its own module.
    """
    annotations = inspect.get_annotations(cls)  # its own, not its bases'
    if any(isinstance(annotation, str) for annotation in annotations.values()):
        cls.__annotations__ = {
            key: typing.ForwardRef(annotation, is_argument=False, module=module, is_class=True)
            if isinstance(annotation, str)
            else annotation
            for key, annotation in annotations.items()
        }
