"""Configuration: timeouts, settings from the environment, precedence, immutability, versions."""

from __future__ import annotations

import functools
import gc
import inspect
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import tenacity
from pydantic import AfterValidator, BaseModel
from pydantic_settings import SettingsConfigDict

import buttress
from buttress._client_config import ClientConfig
from buttress._clock import SYSTEM_CLOCK
from buttress._config import FrozenConfig, defaults
from buttress._environment import EnvironmentSettings
from buttress._redirects import client_redirects
from buttress.testing import DemoServer
from tests.conftest import Either

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No stray BUTTRESS_* variables or .env file from the machine running the tests."""
    import os

    for name in list(os.environ):
        if name.startswith(("BUTTRESS_", "ACME_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


# -- TimeoutConfig -----------------------------------------------------------------------------


def test_timeout_defaults_are_the_spec_defaults() -> None:
    config = buttress.TimeoutConfig()
    assert (config.connect, config.read, config.write, config.pool, config.total) == (
        5.0,
        30.0,
        30.0,
        10.0,
        None,
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (2.5, (2.5, 2.5, 2.5, 2.5)),
        (httpx.Timeout(3.0, read=7.0), (3.0, 7.0, 3.0, 3.0)),
        ((1.0, 2.0, 3.0, 4.0), (1.0, 2.0, 3.0, 4.0)),
        (None, (None, None, None, None)),
    ],
)
def test_timeout_accepts_what_httpx_accepts(
    value: buttress._config.TimeoutTypes, expected: tuple[float | None, ...]
) -> None:
    config = buttress.TimeoutConfig.coerce(value)
    assert (config.connect, config.read, config.write, config.pool) == expected


@pytest.mark.parametrize("bad", ["soon", -1, 0, True, (1, 2), float("inf"), float("nan")])
def test_bad_timeouts_are_configuration_errors(bad: object) -> None:
    with pytest.raises(buttress.ConfigurationError):
        buttress.TimeoutConfig.coerce(bad)  # type: ignore[arg-type]


def test_configs_are_frozen() -> None:
    config = buttress.TimeoutConfig()
    with pytest.raises(buttress.ConfigurationError, match="immutable"):
        config.read = 1.0
    with pytest.raises(buttress.ConfigurationError, match="TimeoutConfig"):
        buttress.TimeoutConfig(bogus=1)  # type: ignore[call-arg]


def _same_defaults(built: BaseModel, validated: BaseModel) -> None:
    """Each field of ``built`` is what validation gave: the very object where it can hash."""
    assert built == validated
    for name in type(built).model_fields:
        value, expected = getattr(built, name), getattr(validated, name)
        try:
            hash(expected)
        except TypeError:  # validation copies these, so must building
            assert value == expected
        else:
            assert value is expected, name


@pytest.mark.parametrize(
    "model",
    [
        buttress.TimeoutConfig,
        buttress.RetryConfig,
        buttress.RetryBudgetConfig,
        buttress.LoggingConfig,
        buttress.TracingConfig,
        buttress.RedirectConfig,
        EnvironmentSettings,
    ],
)
def test_a_shared_default_configuration_is_what_no_arguments_validate_to(
    model: type[FrozenConfig],
) -> None:
    # Default clients hold these instances, built once without validating.
    shared = defaults(model)
    assert shared is defaults(model)
    _same_defaults(shared, model())
    assert shared.model_fields_set == set()


def test_a_client_config_without_arguments_holds_the_objects_validation_holds() -> None:
    # pydantic's model_construct deep-copies defaults; a client's clock must stay the clock.
    built = ClientConfig.of("Client", {})
    _same_defaults(built.model_copy(update={"settings": None}), ClientConfig())
    assert built.clock is SYSTEM_CLOCK


def test_every_client_option_is_checked_by_one_argument_validators() -> None:
    # ClientConfig.of runs each field's validators itself instead of validating the model:
    # a field with a check of another kind (a bound, a validator taking info) would be skipped.
    for name, field in ClientConfig.model_fields.items():
        assert field.annotation is Any, name
        for check in field.metadata:
            assert isinstance(check, AfterValidator), name
            if not isinstance(check.func, type):  # a type (frozenset) takes the one value
                assert len(inspect.signature(check.func).parameters) == 1, name


_PUBLIC_CONFIGS = [
    model
    for model in (getattr(buttress, name) for name in vars(buttress)["__all__"])
    if isinstance(model, type) and issubclass(model, FrozenConfig)
]


_REQUIRED: dict[type[FrozenConfig], dict[str, Any]] = {
    buttress.RateLimitConfig: {"max_requests": 10},
    buttress.EndpointLimit: {"max_requests": 10},
    buttress.APIVersion: {"version": "v2"},
}


@pytest.mark.filterwarnings("error")  # pydantic warns of a default it cannot put in a schema
@pytest.mark.parametrize("model", _PUBLIC_CONFIGS, ids=lambda model: model.__name__)
def test_a_configuration_has_a_json_schema_its_json_form_follows(
    model: type[FrozenConfig],
) -> None:
    # Settings and documentation tools ask every model for its schema, also nested in theirs.
    schema = model.model_json_schema()
    # unknown fields are refused, and the schema says so
    forbids = model.model_config.get("extra") == "forbid"
    assert (schema.get("additionalProperties") is False) == forbids
    example = model(**_REQUIRED.get(model, {}))
    # the cache's backend is an object JSON cannot hold; every other field round-trips
    json_form = json.loads(example.model_dump_json(exclude={"backend"}))
    jsonschema.validate(json_form, schema)  # an outside validator agrees
    again = model.model_validate_json(json.dumps(json_form))
    assert again.model_dump(exclude={"backend"}) == example.model_dump(exclude={"backend"})


def test_a_schema_asked_first_in_a_process_is_made() -> None:
    # pydantic before 2.14 could not encode a default whose model was not built yet; in
    # one test session some earlier test has built it, so this asks in a new interpreter.
    asked = "import buttress; buttress.RetryConfig.model_json_schema()"
    done = subprocess.run([sys.executable, "-c", asked], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_python_only_fields_can_only_be_null_in_json() -> None:
    class Settings(BaseModel):  # an application's settings holding buttress's
        retry: buttress.RetryConfig = buttress.RetryConfig()
        circuit_breaker: buttress.CircuitBreakerConfig = buttress.CircuitBreakerConfig()

    schema = Settings.model_json_schema()
    breaker = schema["$defs"]["CircuitBreakerConfig"]["properties"]
    assert breaker["fallback"]["type"] == breaker["store"]["type"] == "null"
    statuses = schema["$defs"]["RetryConfig"]["properties"]["retry_statuses"]
    assert statuses["items"] == {"type": "integer", "minimum": 100, "maximum": 599}
    assert "backend" not in buttress.CacheConfig.model_json_schema()["properties"]
    with pytest.raises(buttress.ConfigurationError, match="fallback"):
        buttress.CircuitBreakerConfig.model_validate_json('{"fallback": "print"}')


def _alert(host: str, old: str, new: str, *, webhook: str) -> None:
    """A breaker listener holding a secret, as an application would write it."""


@pytest.mark.parametrize(
    "config",
    [
        buttress.CacheConfig(),
        buttress.CacheConfig(backend=buttress.MemoryCache(max_size=5)),
        buttress.RetryConfig(wait=tenacity.wait_fixed(1), stop=tenacity.stop_after_attempt(2)),
        buttress.CircuitBreakerConfig(fallback=lambda request: httpx.Response(503)),
        buttress.CircuitBreakerConfig(
            on_state_change=functools.partial(_alert, webhook="https://hooks.test/pw-in-path")
        ),
        buttress.RateLimitConfig(max_requests=5, store=buttress.RedisStore("redis://:pw@h/0")),
    ],
    ids=lambda config: type(config).__name__,
)
def test_a_configuration_holding_python_objects_dumps_to_json_for_a_log(
    config: FrozenConfig,
) -> None:
    # An application logs its configuration as JSON: each object set is written as its
    # repr (a store's hides its password), every other field as it is.
    dumped = json.loads(config.model_dump_json())
    for name in ("backend", "wait", "stop", "store"):  # objects: their reprs
        value = getattr(config, name, None)
        if value is not None:
            assert dumped[name] == repr(value)
    for name in ("fallback", "on_state_change"):  # functions: their names, never what they hold
        if getattr(config, name, None) is not None:
            assert dumped[name].startswith("<function ")
    assert "pw" not in config.model_dump_json()


_FIRST_USE_IN_THREADS = """
import threading
import buttress

barrier = threading.Barrier(32)
failures = []


def make():
    barrier.wait()  # every thread makes its models' first instance at once
    try:
        buttress.RetryConfig(max_attempts=2, backoff_factor=0.1)
        buttress.TimeoutConfig.model_validate({"read": 2.0})
        buttress.CircuitBreakerConfig.model_validate_json('{"failure_threshold": 3}')
    except Exception as exc:
        failures.append(repr(exc))


threads = [threading.Thread(target=make) for _ in range(32)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(failures)
"""


def test_configurations_made_first_in_many_threads_at_once_all_validate() -> None:
    # Validators are built on first use; pydantic 2.11.0 to 2.11.4 could hand threads
    # racing for that build the base class's validator. A fresh interpreter: first use.
    result = subprocess.run(
        [sys.executable, "-c", _FIRST_USE_IN_THREADS],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result.stdout.strip() == "[]", result.stdout


@pytest.mark.parametrize(
    "environment",
    [{}, {"allow_cross_origin_redirects": False, "api_key_header": "X-Acme-Key"}],
)
def test_a_client_without_redirect_rules_takes_what_validating_them_gives(
    environment: dict[str, object],
) -> None:
    settings = buttress.ButtressSettings(**environment)  # type: ignore[arg-type]
    validated = buttress.RedirectConfig(
        allow_cross_origin=settings.allow_cross_origin_redirects is not False
    ).model_copy(update={"strip_headers": {settings.api_key_header}})
    built = client_redirects(None, settings)
    assert built == validated
    assert built.model_fields_set == validated.model_fields_set


# -- precedence: per call > client > environment > defaults ------------------------------------


async def test_defaults_when_nothing_is_set(make_client: Callable[..., Either]) -> None:
    client = make_client()
    assert client.client.timeout == httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=10.0)
    assert client.client.follow_redirects is True
    assert client.client.max_redirects == 20


async def test_environment_fills_what_the_client_does_not_set(
    make_client: Callable[..., Either], demo: DemoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BUTTRESS_BASE_URL", demo.url)
    monkeypatch.setenv("BUTTRESS_READ_TIMEOUT", "12")
    monkeypatch.setenv("BUTTRESS_MAX_REDIRECTS", "3")
    monkeypatch.setenv("BUTTRESS_BEARER_TOKEN", "env-token")
    monkeypatch.setenv("BUTTRESS_API_VERSION", "2024-01-01")
    client = make_client()
    assert client.client.timeout.read == 12.0
    assert client.client.timeout.connect == 5.0
    assert client.client.max_redirects == 3
    echoed = (await client.get("/echo")).json()["headers"]
    assert echoed["authorization"] == "Bearer env-token"
    assert echoed["accept-version"] == "2024-01-01"


async def test_client_arguments_beat_the_environment(
    make_client: Callable[..., Either], demo: DemoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BUTTRESS_BASE_URL", "http://wrong.invalid")
    monkeypatch.setenv("BUTTRESS_TIMEOUT", "12")
    monkeypatch.setenv("BUTTRESS_API_KEY", "env-key")
    client = make_client(base_url=demo.url, timeout=3.0, auth=("bearer", "arg-token"))
    assert client.client.timeout.read == 3.0
    echoed = (await client.get("/echo")).json()["headers"]
    assert echoed["authorization"] == "Bearer arg-token"
    assert "x-api-key" not in echoed


async def test_per_call_beats_the_client(
    make_client: Callable[..., Either], demo: DemoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BUTTRESS_API_KEY", "env-key")
    client = make_client(base_url=demo.url, timeout=3.0)
    response = await client.get("/echo", timeout=9.0, auth=("bearer", "call-token"))
    assert response.request.extensions["timeout"]["read"] == 9.0
    assert response.json()["headers"]["authorization"] == "Bearer call-token"
    assert "x-api-key" not in response.json()["headers"]
    plain = await client.get("/echo")
    assert plain.request.extensions["timeout"]["read"] == 3.0
    assert plain.json()["headers"]["x-api-key"] == "env-key"


async def test_total_timeout_travels_in_request_options(make_client: Callable[..., Either]) -> None:
    client = make_client(base_url="http://api.test", timeout=buttress.TimeoutConfig(total=20))
    request = client.client.build_request("GET", "/x")
    assert buttress.RequestOptions.of(request).total_timeout == 20
    request = client.client.build_request("GET", "/x", timeout=buttress.TimeoutConfig(total=2))
    assert buttress.RequestOptions.of(request).total_timeout == 2
    request = client.client.build_request("GET", "/x", timeout=None)
    assert buttress.RequestOptions.of(request).total_timeout is None
    assert request.extensions["timeout"]["read"] is None


async def test_a_stray_dotenv_file_changes_nothing(
    make_client: Callable[..., Either], demo: DemoServer, tmp_path: Path
) -> None:
    # _clean_env made tmp_path the working directory: a .env lying there is not read.
    (tmp_path / ".env").write_text(
        "BUTTRESS_BASE_URL=http://from-dotenv.test\nBUTTRESS_API_KEY=stray-key\n"
    )
    client = make_client(base_url=demo.url)
    echoed = (await client.get("/echo")).json()["headers"]
    assert "x-api-key" not in echoed
    assert str(make_client().client.base_url) == ""
    assert buttress.ButtressSettings().base_url is None


async def test_env_file_names_the_dotenv_file_to_read(
    make_client: Callable[..., Either], demo: DemoServer, tmp_path: Path
) -> None:
    named = tmp_path / "service.env"
    named.write_text(f"BUTTRESS_BASE_URL={demo.url}\nBUTTRESS_API_KEY=file-key\n")
    client = make_client(env_file=named)
    echoed = (await client.get("/echo")).json()["headers"]
    assert echoed["x-api-key"] == "file-key"
    # A copy keeps the settings read; a copy given another file reads that one instead.
    (tmp_path / "other.env").write_text("BUTTRESS_BASE_URL=http://other.test\n")
    same = client.client.with_options(headers={"X-Team": "web"})
    other = client.client.with_options(env_file=tmp_path / "other.env")
    try:
        assert same.base_url == client.client.base_url
        assert str(other.base_url) == "http://other.test"
    finally:
        await Either(same).aclose()
        await Either(other).aclose()


async def test_buttress_env_file_names_it_from_the_environment(
    make_client: Callable[..., Either], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ops.env").write_text("BUTTRESS_BASE_URL=http://from-ops.test\n")
    monkeypatch.setenv("BUTTRESS_ENV_FILE", "ops.env")
    assert str(make_client().client.base_url) == "http://from-ops.test"
    monkeypatch.setenv("BUTTRESS_BASE_URL", "http://from-variable.test")  # variables win
    assert str(make_client().client.base_url) == "http://from-variable.test"


async def test_a_named_dotenv_file_that_is_missing_is_an_error(
    make_client: Callable[..., Either], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(buttress.ConfigurationError, match=r"no dotenv file at 'missing\.env'"):
        make_client(env_file="missing.env")
    monkeypatch.setenv("BUTTRESS_ENV_FILE", "gone.env")
    with pytest.raises(buttress.ConfigurationError, match=r"no dotenv file at 'gone\.env'"):
        make_client()


async def test_env_file_and_settings_are_one_or_the_other(
    make_client: Callable[..., Either], tmp_path: Path
) -> None:
    (tmp_path / "a.env").write_text("")
    with pytest.raises(buttress.ConfigurationError, match="env_file= and settings="):
        make_client(env_file="a.env", settings=buttress.ButtressSettings())


async def test_an_sdk_opts_its_users_into_dotenv(
    make_client: Callable[..., Either], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class AcmeSettings(buttress.ButtressSettings):
        model_config = SettingsConfigDict(env_prefix="ACME_", env_file=".env")

    assert AcmeSettings().base_url is None  # its default file may be absent
    (tmp_path / ".env").write_text("ACME_BASE_URL=http://acme.test\n")
    assert str(make_client(settings=AcmeSettings()).client.base_url) == "http://acme.test"
    (tmp_path / "staging.env").write_text("ACME_BASE_URL=http://staging.acme.test\n")
    monkeypatch.setenv("ACME_ENV_FILE", "staging.env")
    staging = make_client(settings=AcmeSettings())
    assert str(staging.client.base_url) == "http://staging.acme.test"


async def test_an_sdk_uses_its_own_prefix(
    make_client: Callable[..., Either], demo: DemoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    class AcmeSettings(buttress.ButtressSettings):
        model_config = SettingsConfigDict(env_prefix="ACME_", env_file=".env")

    monkeypatch.setenv("ACME_BASE_URL", demo.url)
    monkeypatch.setenv("ACME_API_KEY", "acme-key")
    monkeypatch.setenv("BUTTRESS_API_KEY", "not-this-one")
    client = make_client(settings=AcmeSettings())
    echoed = (await client.get("/echo")).json()["headers"]
    assert echoed["x-api-key"] == "acme-key"


async def test_basic_credentials_from_environment(
    make_client: Callable[..., Either], demo: DemoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BUTTRESS_USERNAME", "alice")
    monkeypatch.setenv("BUTTRESS_PASSWORD", "wonder")
    client = make_client(base_url=demo.url)
    echoed = (await client.get("/echo")).json()["headers"]
    assert echoed["authorization"] == "Basic YWxpY2U6d29uZGVy"


@pytest.mark.parametrize("value", ["inf", "Infinity", "nan"])
def test_an_infinite_setting_is_refused_when_the_client_is_built(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    # httpx would take it and fail on the first request, deep in a clock or a socket.
    monkeypatch.setenv("BUTTRESS_TIMEOUT", value)
    with pytest.raises(buttress.ConfigurationError, match="BUTTRESS_TIMEOUT"):
        buttress.Client()
    with pytest.raises(buttress.ConfigurationError, match="finite"):
        buttress.RetryConfig(backoff_max=float("inf"))


def test_an_environment_without_settings_gives_what_pydantic_settings_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # With no BUTTRESS_* variable a client skips pydantic-settings and takes these defaults.
    from buttress._client_config import read_environment
    from buttress._environment import NO_SETTINGS

    for name in [name for name in os.environ if name.upper().startswith("BUTTRESS_")]:
        monkeypatch.delenv(name)
    assert read_environment(None) is NO_SETTINGS
    assert NO_SETTINGS.model_dump() == buttress.ButtressSettings().model_dump()
    monkeypatch.setenv("BUTTRESS_USER_AGENT", "acme/1")
    read = read_environment(None)
    assert isinstance(read, buttress.ButtressSettings)
    assert read.user_agent == "acme/1"


def test_settings_hide_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUTTRESS_API_KEY", "super-secret")
    settings = buttress.ButtressSettings()
    assert "super-secret" not in repr(settings)
    assert "super-secret" not in str(settings)


# -- immutability ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("base_url", "http://other.test"),
        ("headers", {"X": "1"}),
        ("timeout", 1.0),
        ("auth", ("a", "b")),
        ("follow_redirects", False),
        ("max_redirects", 1),
        ("event_hooks", {}),
        ("params", {"a": "1"}),
    ],
)
async def test_configuration_cannot_be_set(
    make_client: Callable[..., Either], name: str, value: object
) -> None:
    client = make_client(base_url="http://api.test")
    with pytest.raises(buttress.ConfigurationError, match="with_options"):
        setattr(client.client, name, value)


async def test_default_headers_cannot_be_changed_in_place(
    make_client: Callable[..., Either],
) -> None:
    client = make_client(base_url="http://api.test", headers={"X-Team": "web"})
    with pytest.raises(buttress.ConfigurationError):
        client.client.headers["X-Team"] = "ops"
    with pytest.raises(buttress.ConfigurationError):
        del client.client.headers["X-Team"]
    with pytest.raises(buttress.ConfigurationError):
        client.client.headers.update({"X-Other": "1"})
    assert client.client.headers["X-Team"] == "web"


async def test_with_options_returns_a_changed_copy(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    client = make_client(base_url=demo.url, headers={"X-Team": "web"}, timeout=4.0)
    other = client.client.with_options(headers={"X-Team": "ops"})
    try:
        assert type(other) is type(client.client)
        assert other.headers["X-Team"] == "ops"
        assert other.timeout.read == 4.0
        assert client.client.headers["X-Team"] == "web"
    finally:
        if isinstance(other, buttress.AsyncClient):
            await other.aclose()
        else:
            other.close()


async def test_a_copy_keeps_the_environment_for_what_it_does_not_change(
    make_client: Callable[..., Either], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BUTTRESS_MAX_REDIRECTS", "3")
    monkeypatch.setenv("BUTTRESS_READ_TIMEOUT", "12")
    client = make_client()
    monkeypatch.setenv("BUTTRESS_MAX_REDIRECTS", "9")  # read once, when the client was made
    same = client.client.with_options(follow_redirects=False)
    changed = client.client.with_options(max_redirects=7, timeout=2.0)
    try:
        assert (same.max_redirects, same.timeout.read, same.follow_redirects) == (3, 12.0, False)
        assert (changed.max_redirects, changed.timeout.read) == (7, 2.0)
    finally:
        await Either(same).aclose()
        await Either(changed).aclose()


async def test_user_agent_default_and_override(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    client = make_client(base_url=demo.url)
    agent = (await client.get("/echo")).json()["headers"]["user-agent"]
    assert agent == f"buttress/{buttress.__version__} httpx/{httpx.__version__}"
    custom = make_client(base_url=demo.url, user_agent="acme-sdk/1.0")
    assert (await custom.get("/echo")).json()["headers"]["user-agent"] == "acme-sdk/1.0"
    via_headers = make_client(base_url=demo.url, headers={"User-Agent": "mine/2"})
    assert (await via_headers.get("/echo")).json()["headers"]["user-agent"] == "mine/2"
    per_call = await client.get("/echo", headers={"User-Agent": "call/3"})
    assert per_call.json()["headers"]["user-agent"] == "call/3"


def test_unclosed_client_warns() -> None:
    client = buttress.Client(base_url="http://api.test")
    with pytest.warns(ResourceWarning, match="unclosed"):
        client.__del__()
    client.close()


def test_closed_client_does_not_warn() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with buttress.Client(base_url="http://api.test"):
            pass
        client = buttress.AsyncClient(base_url="http://api.test")
        import asyncio

        asyncio.run(client.aclose())
        del client
        gc.collect()


def test_repr_hides_credentials() -> None:
    with buttress.Client(base_url="https://user:hunter2@api.test", auth=("bearer", "tok3n")) as c:
        assert "hunter2" not in repr(c)
        assert "tok3n" not in repr(c)
        assert "tok3n" not in repr(c.auth)


def test_the_configuration_shows_option_names_not_values() -> None:
    secrets = ("hunter2", "tok3n", "s3cret")
    with buttress.Client(
        base_url="https://user:hunter2@api.test",
        auth=("bearer", "tok3n"),
        proxy="http://user:s3cret@proxy.test:8080",
    ) as client:
        shown = f"{client._config!r} {client._config}"
    assert not [secret for secret in secrets if secret in shown]
    assert "'auth'" in shown
    assert "'proxy'" in shown


def test_verify_disabled_logs_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="buttress"), buttress.Client(verify_ssl=False):
        pass
    warnings = [r for r in caplog.records if "verification is disabled" in r.getMessage()]
    assert len(warnings) == 1


# -- API versioning ------------------------------------------------------------------------------


async def test_version_in_default_header(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    client = make_client(base_url=demo.url, api_version="v2")
    assert (await client.get("/echo")).json()["headers"]["accept-version"] == "v2"
    per_call = await client.get("/echo", api_version="v3")
    assert per_call.json()["headers"]["accept-version"] == "v3"


async def test_version_in_custom_header(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    version = buttress.APIVersion(version="2022-11-28", header="X-GitHub-Api-Version")
    client = make_client(base_url=demo.url, api_version=version)
    echoed = (await client.get("/echo")).json()["headers"]
    assert echoed["x-github-api-version"] == "2022-11-28"
    assert "accept-version" not in echoed


async def test_version_as_path_prefix(make_client: Callable[..., Either], demo: DemoServer) -> None:
    version = buttress.APIVersion(version="v1", location="path")
    client = make_client(base_url=demo.url + "/api", api_version=version)
    assert str(client.client.build_request("GET", "/users").url) == demo.url + "/api/v1/users"
    assert str(client.client.build_request("GET", "users", api_version="v2").url) == (
        demo.url + "/api/v2/users"
    )
    absolute = "http://elsewhere.test/users"
    assert str(client.client.build_request("GET", absolute).url) == absolute


async def test_per_call_version_without_client_version(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    client = make_client(base_url=demo.url)
    assert (await client.get("/echo", api_version="9")).json()["headers"]["accept-version"] == "9"
    assert "accept-version" not in (await client.get("/echo")).json()["headers"]


# -- per-request options for plain httpx users -----------------------------------------------


def test_options_for_plain_httpx() -> None:
    request = httpx.Request("GET", "http://api.test", extensions=buttress.options(total_timeout=4))
    assert buttress.RequestOptions.of(request).total_timeout == 4
    assert buttress.RequestOptions.of(httpx.Request("GET", "http://api.test")).total_timeout is None


def test_unknown_option_is_refused() -> None:
    with pytest.raises(buttress.ConfigurationError, match="did you mean `retry=`"):
        buttress.options(retries=3)


def test_options_merged_ignores_none() -> None:
    base = buttress.RequestOptions(total_timeout=3)
    assert base.merged(total_timeout=None) is base
    assert base.merged(streamed=True).streamed is True
