"""The public API: flat, sorted, complete, and documented with an example."""

from __future__ import annotations

import inspect
import types

import pytest

import buttress
import buttress.auth
import buttress.testing
import buttress.transports

PUBLIC_MODULES = [buttress, buttress.auth, buttress.testing, buttress.transports]

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


def _documented_names() -> list[tuple[str, object]]:
    found = []
    for module in PUBLIC_MODULES:
        for name in module.__all__:
            if name not in NOT_OURS:
                found.append((f"{module.__name__}.{name}", getattr(module, name)))
    return found


@pytest.mark.parametrize(("name", "value"), _documented_names(), ids=lambda x: str(x))
def test_every_public_name_has_a_docstring_with_an_example(name: str, value: object) -> None:
    doc = inspect.getdoc(value) or ""
    assert doc, f"{name} has no docstring"
    assert ">>>" in doc, f"{name}'s docstring has no example"


def test_spec_names_are_exported() -> None:
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
        assert name in buttress.__all__


def test_py_typed_ships() -> None:
    from importlib.resources import files

    assert files("buttress").joinpath("py.typed").is_file()
