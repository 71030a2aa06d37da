"""The public API: flat, sorted, complete, and documented with an example."""

from __future__ import annotations

import ast
import importlib
import inspect
import pickle
import re
import sys
import types
import typing
from pathlib import Path

import httpx
import pytest

import buttress
import buttress.auth
import buttress.cache
import buttress.stores
import buttress.testing
import buttress.transports
from buttress import _lazy

PUBLIC_MODULES = [buttress, buttress.auth, buttress.cache, buttress.testing, buttress.transports]
LAZY_PACKAGES = [buttress, buttress.stores, buttress.transports]
# The packages that show every class and function they export as their own.
ADOPTING = [buttress, buttress.cache, buttress.stores, buttress.testing, buttress.transports]
SRC = Path(buttress.__file__).parent

# Re-exported as they are, documented by their own projects: ``Request`` is httpx.Request
# (for type hints, SPEC 13.3), ``ServerSentEvent`` is httpx-sse's event.
NOT_OURS = {"Request", "ServerSentEvent", "__version__"}


@pytest.mark.parametrize("module", PUBLIC_MODULES, ids=lambda m: m.__name__)
def test_all_is_sorted_and_complete(module: types.ModuleType) -> None:
    exported = list(module.__all__)
    assert exported == sorted(exported)
    own = (module.__name__ + ".", module.__name__ + "._")
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and (value.__module__ + ".").startswith(own)
    }
    assert public - set(exported) == set()


def _documented_names() -> list[str]:
    return [
        f"{module.__name__}.{name}"
        for module in PUBLIC_MODULES
        for name in module.__all__
        if name not in NOT_OURS
    ]


def _exported(name: str) -> object:
    """The value ``buttress.cache.MemoryCache`` names."""
    package, _, attribute = name.rpartition(".")
    return getattr(sys.modules[package], attribute)


@pytest.mark.parametrize("name", _documented_names())
def test_every_public_name_has_a_docstring_with_an_example(name: str) -> None:
    doc = inspect.getdoc(_exported(name)) or ""
    assert doc, f"{name} has no docstring"
    assert ">>>" in doc, f"{name}'s docstring has no example"


def test_spec_names_are_exported() -> None:
    exported = vars(buttress)["__all__"]  # type checkers see no __all__: it is computed
    for name in [
        "Client",
        "AsyncClient",
        "ClientError",
        "HTTPError",
        "ClientResponseError",
        "AuthenticationError",
        "ForbiddenError",
        "NotFoundError",
        "RateLimitError",
        "ServerError",
        "ConnectionError",
        "TimeoutError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "WriteTimeoutError",
        "CircuitBreakerError",
        "CircuitBreakerOpenError",
        "ValidationError",
        "ConfigurationError",
        "TimeoutConfig",
        "Request",
        "Response",
    ]:
        assert name in exported


def test_py_typed_ships() -> None:
    from importlib.resources import files

    assert files("buttress").joinpath("py.typed").is_file()


def _type_checking_imports(package: types.ModuleType) -> dict[str, set[str]]:
    """The names a package imports under ``if TYPE_CHECKING:``, by module."""
    tree = ast.parse(Path(str(package.__file__)).read_text(encoding="utf-8"))
    imported: dict[str, set[str]] = {}
    for block in tree.body:
        if isinstance(block, ast.If) and ast.unparse(block.test) == "TYPE_CHECKING":
            for node in block.body:
                assert isinstance(node, ast.ImportFrom), ast.unparse(node)
                for alias in node.names:
                    assert alias.asname == alias.name, f"{alias.name} is not re-exported"
                    module = "." * node.level + (node.module or "")
                    imported.setdefault(module, set()).add(alias.name)
    return imported


@pytest.mark.parametrize("package", LAZY_PACKAGES, ids=lambda m: m.__name__)
def test_type_checkers_import_what_the_table_exports(package: types.ModuleType) -> None:
    table = {module: set(names) for module, names in package._EXPORTS.items()}
    assert _type_checking_imports(package) == table


def _own_exports() -> list[str]:
    """Each public module's classes and functions that buttress defines."""
    return [
        f"{module.__name__}.{name}"
        for module in PUBLIC_MODULES
        for name in module.__all__
        if _lazy.defined_in(getattr(module, name)) is not None
    ]


@pytest.mark.parametrize("package", ADOPTING, ids=lambda m: m.__name__)
def test_every_class_and_function_a_package_exports_is_adopted(package: types.ModuleType) -> None:
    exported = {name: getattr(package, name) for name in package.__all__}
    ours = {
        name
        for name, value in exported.items()
        if isinstance(value, (type, types.FunctionType)) and value.__module__ != "httpx"
    }
    assert {name for name in ours if _lazy.defined_in(exported[name]) is None} == set()


@pytest.mark.parametrize("name", _own_exports())
def test_an_export_shows_the_shortest_public_name(name: str) -> None:
    value = _exported(name)
    package, _, attribute = name.rpartition(".")
    home = "buttress" if getattr(buttress, attribute, None) is value else package
    assert value.__module__ == home
    assert pickle.loads(pickle.dumps(value)) is value


def test_httpx_names_keep_their_module() -> None:
    assert buttress.Request is httpx.Request
    assert httpx.Request.__module__ == "httpx"
    parent = buttress.ServerSentEvent.__mro__[1]  # httpx-sse's event, which ours extends
    assert parent.__module__.startswith("httpx_sse")


def test_instances_and_errors_pickle_under_the_public_name() -> None:
    config = buttress.RetryConfig(max_attempts=5)
    assert pickle.loads(pickle.dumps(config)) == config
    error = pickle.loads(pickle.dumps(buttress.ConfigurationError("bad timeout")))
    assert type(error) is buttress.ConfigurationError
    assert str(error) == "bad timeout"
    assert repr(buttress.Client) == "<class 'buttress.Client'>"


@pytest.mark.parametrize("name", _own_exports())
def test_type_hints_resolve_where_the_annotations_were_written(name: str) -> None:
    value = _exported(name)
    # The names an annotation may use are those of the module that defines it, as
    # before its __module__ changed: only a name it imports for type checkers only fails.
    home = vars(sys.modules[str(_lazy.defined_in(value))])
    try:
        typing.get_type_hints(value)
    except NameError as error:
        missing = error.name
    else:
        return
    assert missing is not None
    assert missing not in home, f"{name}: {missing} is in its module, yet not found"


# Import paths of the last release whose names have moved since: old path, name, new home.
MOVED = [
    ("buttress.cache.invalidation", "Cache", "buttress.cache"),
    ("buttress.policies.failures", "TRANSIENT_ERRORS", "buttress.policies.outcomes"),
    ("buttress.policies.failures", "is_connect_failure", "buttress.policies.outcomes"),
    ("buttress.policies.failures", "is_transient", "buttress.policies.outcomes"),
    ("buttress.policies.ratelimit", "FixedWindow", "buttress.policies.limits"),
    ("buttress.policies.ratelimit", "SlidingWindow", "buttress.policies.limits"),
    ("buttress.policies.ratelimit", "TokenBucket", "buttress.policies.limits"),
]


@pytest.mark.parametrize(("old", "name", "home"), MOVED, ids=lambda part: part)
def test_a_released_import_path_still_works_and_names_the_new_place(
    old: str, name: str, home: str
) -> None:
    module = importlib.import_module(old)
    message = f"^{re.escape(f'{old}.{name} is deprecated: import it from {home}')}$"
    with pytest.warns(DeprecationWarning, match=message) as caught:
        value = getattr(module, name)
    assert value is getattr(importlib.import_module(home), name)
    assert [warning.filename for warning in caught] == [__file__]  # the importing line
    with pytest.raises(AttributeError, match="has no attribute 'Nothing'"):
        module.Nothing  # noqa: B018 - only the moved names resolve


def test_httpx_private_imports_are_names_httpx_does_not_export() -> None:
    private = re.compile(r"^from httpx\._\w+ import (.+?)(?:  #.*)?$", re.M)
    for path in SRC.rglob("*.py"):
        for names in private.findall(path.read_text(encoding="utf-8")):
            for imported in names.split(", "):
                assert imported not in httpx.__all__, f"{path.name}: import httpx.{imported}"
