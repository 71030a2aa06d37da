"""Bad configuration fails with ConfigurationError naming the class, the field and what was
wrong: never pydantic's ValidationError, never a secret value in the message."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pydantic
import pytest

import buttress
import buttress.transports
from buttress._config import FrozenConfig

pytestmark = pytest.mark.anyio

# For each public configuration model: one invalid value, and the field the message names.
INVALID: dict[type[pydantic.BaseModel], tuple[dict[str, Any], str]] = {
    buttress.APIVersion: ({"location": "query"}, "location"),
    buttress.ButtressSettings: ({"max_redirects": -1}, "max_redirects"),
    buttress.CacheConfig: ({"default_ttl": -1}, "default_ttl"),
    buttress.CircuitBreakerConfig: ({"failure_threshold": 0}, "failure_threshold"),
    buttress.EndpointLimit: ({"time_window": 0}, "time_window"),
    buttress.LoggingConfig: ({"body_limit": -1}, "body_limit"),
    buttress.RateLimitConfig: ({"max_requests": 0}, "max_requests"),
    buttress.RedirectConfig: ({"methods": {"POST": "jump"}}, "methods.POST"),
    buttress.RetryBudgetConfig: ({"window": 0}, "window"),
    buttress.RetryConfig: ({"max_attempts": 0}, "max_attempts"),
    buttress.TimeoutConfig: ({"read": -1}, "read"),
    buttress.TracingConfig: ({"request_id": "uuid5"}, "request_id"),
}
REQUIRED: dict[type[pydantic.BaseModel], dict[str, Any]] = {
    buttress.APIVersion: {"version": "v1"},
    buttress.EndpointLimit: {"max_requests": 1},
}
CONFIGS = sorted(INVALID, key=lambda cls: cls.__name__)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No BUTTRESS_* variables or .env file from the machine running the tests."""
    for name in list(os.environ):
        if name.startswith("BUTTRESS_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _make(cls: type[pydantic.BaseModel], **values: Any) -> Any:
    return cls(**{**REQUIRED.get(cls, {}), **values})


def test_every_public_config_model_is_covered_and_on_the_shared_base() -> None:
    public = {
        obj
        for name in vars(buttress)["__all__"]  # type checkers see no __all__: it is computed
        if isinstance(obj := getattr(buttress, name), type) and issubclass(obj, pydantic.BaseModel)
    }
    assert public == set(INVALID)
    assert all(issubclass(cls, FrozenConfig) for cls in public)


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda cls: cls.__name__)
def test_an_invalid_value_names_the_class_and_the_field(cls: type[pydantic.BaseModel]) -> None:
    values, field = INVALID[cls]
    with pytest.raises(buttress.ConfigurationError) as caught:
        _make(cls, **values)
    assert str(caught.value).startswith(f"invalid {cls.__name__}: {field}")
    assert not isinstance(caught.value, pydantic.ValidationError)
    assert caught.value.__suppress_context__  # no pydantic traceback chained to it
    with pytest.raises(buttress.ConfigurationError) as validated:
        cls.model_validate({**REQUIRED.get(cls, {}), **values})
    assert str(validated.value) == str(caught.value)


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda cls: cls.__name__)
def test_an_unknown_field_is_refused(cls: type[pydantic.BaseModel]) -> None:
    with pytest.raises(buttress.ConfigurationError) as caught:
        _make(cls, colour="blue")
    assert str(caught.value) == f"invalid {cls.__name__}: unknown field 'colour'"


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda cls: cls.__name__)
def test_configs_stay_frozen_comparable_and_copyable(cls: type[pydantic.BaseModel]) -> None:
    config = _make(cls)
    name = next(iter(cls.model_fields))
    with pytest.raises(buttress.ConfigurationError, match="immutable"):
        setattr(config, name, getattr(config, name))
    copy = config.model_copy()
    assert copy == config
    assert repr(copy) == repr(config)
    assert repr(config).startswith(f"{cls.__name__}(")
    if cls is not buttress.RedirectConfig:  # its ``methods`` is a dict, as before
        assert hash(copy) == hash(config)
    values, field = INVALID[cls]
    with pytest.raises(buttress.ConfigurationError, match=f"invalid {cls.__name__}: {field}"):
        config.model_copy(update=values)


def test_a_misspelt_field_gets_a_suggestion() -> None:
    with pytest.raises(buttress.ConfigurationError) as caught:
        buttress.RetryConfig(max_attempt=5)  # type: ignore[call-arg]
    assert str(caught.value) == (
        "invalid RetryConfig: unknown field 'max_attempt' (did you mean 'max_attempts'?)"
    )


def test_the_message_says_what_was_wrong_with_each_field() -> None:
    with pytest.raises(buttress.ConfigurationError) as caught:
        buttress.RetryConfig(max_attempts=0, wait="soon")
    assert str(caught.value) == (
        "invalid RetryConfig: max_attempts: Input should be greater than or equal to 1 (got 0); "
        "wait: must be a tenacity strategy (a callable taking a RetryCallState) (got str)"
    )


def test_nested_and_model_level_errors() -> None:
    with pytest.raises(buttress.ConfigurationError) as caught:
        buttress.RateLimitConfig(endpoints=[{"max_requests": 0}])  # type: ignore[arg-type]
    assert str(caught.value) == (
        "invalid RateLimitConfig: endpoints.0: invalid EndpointLimit: "
        "max_requests: Input should be greater than 0 (got 0)"
    )
    with pytest.raises(
        buttress.ConfigurationError,
        match="invalid RateLimitConfig: burst_size applies to the token_bucket strategy only",
    ):
        buttress.RateLimitConfig(strategy="fixed_window", max_requests=5, burst_size=2)


def test_model_copy_validates_and_keeps_what_was_set() -> None:
    config = buttress.RetryConfig(max_attempts=5)
    changed = config.model_copy(update={"backoff_factor": 0.1})
    assert (changed.max_attempts, changed.backoff_factor) == (5, 0.1)
    assert changed.model_fields_set == {"max_attempts", "backoff_factor"}
    assert changed.budget is config.budget
    with pytest.raises(buttress.ConfigurationError, match="unknown field 'retries'"):
        config.model_copy(update={"retries": 2})


def test_json_documents_are_validated_too() -> None:
    assert buttress.TimeoutConfig.model_validate_json('{"read": 2}').read == 2.0
    with pytest.raises(buttress.ConfigurationError, match="invalid TimeoutConfig: read"):
        buttress.TimeoutConfig.model_validate_json('{"read": "soon"}')


@pytest.mark.parametrize(
    ("make", "secret"),
    [
        (lambda: buttress.ButtressSettings(api_key=31415926535), "31415926535"),  # type: ignore[arg-type]
        (lambda: buttress.LoggingConfig(redact_patterns=("sk_live_[9f3a",)), "sk_live_"),
        (lambda: buttress.APIVersion(version="v1", location="tok-SECRET"), "tok-SECRET"),  # type: ignore[arg-type]
        (lambda: buttress.RetryConfig(stop="tok-SECRET"), "tok-SECRET"),
    ],
)
def test_values_that_may_be_secrets_are_not_echoed(make: Any, secret: str) -> None:
    with pytest.raises(buttress.ConfigurationError) as caught:
        make()
    assert secret not in str(caught.value)
    assert secret not in repr(caught.value)


def test_settings_name_the_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUTTRESS_MAX_REDIRECTS", "many")
    with pytest.raises(buttress.ConfigurationError) as caught:
        buttress.Client()
    assert str(caught.value).startswith(
        "invalid ButtressSettings: max_redirects (BUTTRESS_MAX_REDIRECTS): "
    )


def test_settings_refuse_a_misspelt_argument_and_a_base_url_without_scheme(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(buttress.ConfigurationError, match="did you mean 'base_url'"):
        buttress.ButtressSettings(base_ur="https://api.example.com")  # type: ignore[call-arg]
    monkeypatch.setenv("BUTTRESS_BASE_URL", "api.example.com")
    with pytest.raises(buttress.ConfigurationError, match=r"BUTTRESS_BASE_URL\): needs a scheme"):
        buttress.ButtressSettings()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: buttress.OffsetLimitPagination(limit=0),
            "invalid OffsetLimitPagination: limit must be an int >= 1 or None, not 0",
        ),
        (
            lambda: buttress.PageNumberPagination(per_page="10"),  # type: ignore[arg-type]
            "invalid PageNumberPagination: per_page must be an int >= 1 or None, not str",
        ),
        (
            lambda: buttress.PageNumberPagination(start_page=-1),
            "invalid PageNumberPagination: start_page must be an int >= 0, not -1",
        ),
        (
            lambda: buttress.CursorPagination(cursor_path=3),  # type: ignore[arg-type]
            "invalid CursorPagination: cursor_path must be a string, not 3",
        ),
    ],
)
def test_pagination_strategies_check_their_fields(make: Any, message: str) -> None:
    with pytest.raises(buttress.ConfigurationError) as caught:
        make()
    assert str(caught.value) == message


# -- client arguments ----------------------------------------------------------------------------

CLIENTS = [buttress.Client, buttress.AsyncClient]


@pytest.mark.parametrize("cls", CLIENTS, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"retry": "yes"}, "(retry=...) takes a RetryConfig, True, False or None, not str"),
        ({"timeout": -1}, "invalid timeout -1: give finite seconds (> 0)"),
        ({"base_url": 3}, "(base_url=...) takes a URL (str or httpx.URL), not 3"),
        ({"base_url": "api.example.com"}, "(base_url=...) needs a scheme and a host"),
        ({"base_url": "http://[::1"}, "(base_url=...) not a valid URL: Invalid port"),
        ({"base_url": "ftp://x"}, "(base_url=...) needs the http or https scheme, not 'ftp'"),
        (
            {"rate_limit": {"max_requests": 5}},
            "(rate_limit=...) takes a RateLimitConfig, a RateLimiter or None, not dict",
        ),
        ({"circuit_breaker": True}, "(circuit_breaker=...) takes a CircuitBreakerConfig"),
        ({"cache": "memory"}, "(cache=...) takes a CacheConfig or None, not str"),
        ({"logging": "debug"}, "(logging=...) takes a LoggingConfig, True or False"),
        ({"max_redirects": -1}, "(max_redirects=...) takes an int >= 0, not -1"),
        ({"max_connections": 0}, "(max_connections=...) takes an int >= 1 or None, not 0"),
        ({"headers": 3}, "(headers=...) takes headers (a mapping or pairs of strings), not 3"),
        ({"event_hooks": {"requests": []}}, "(unknown events ['requests'])"),
        ({"event_hooks": {"request": [1]}}, "(lists of callables) or None, not dict"),
        ({"timeout": float("inf")}, "invalid timeout inf: give finite seconds (> 0)"),
        ({"middleware": print}, "(middleware=...) takes a list of middleware"),
        ({"http2": "yes"}, "(http2=...) takes True or False, not str"),
        ({"transport": object()}, "(transport=...) takes an httpx transport, not object"),
        ({"proxy": "http://[::1"}, "the proxy is not a valid URL: Invalid port"),
        ({"api_version": ""}, "invalid APIVersion: version: String should have at least 1"),
    ],
)
def test_client_arguments_of_the_wrong_kind(
    cls: type[buttress.Client | buttress.AsyncClient], arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(buttress.ConfigurationError) as caught:
        cls(**arguments)
    assert message in str(caught.value)
    if "=...)" in message:
        assert str(caught.value).startswith(f"{cls.__name__}(")


@pytest.mark.parametrize("cls", CLIENTS, ids=lambda cls: cls.__name__)
def test_an_invalid_config_object_fails_before_the_client_exists(
    cls: type[buttress.Client | buttress.AsyncClient],
) -> None:
    with pytest.raises(buttress.ConfigurationError, match="invalid RateLimitConfig: max_requests"):
        cls(rate_limit=buttress.RateLimitConfig(max_requests=0))


@pytest.mark.parametrize("cls", CLIENTS, ids=lambda cls: cls.__name__)
def test_an_unparsable_base_url_is_an_invalid_url_error(
    cls: type[buttress.Client | buttress.AsyncClient],
) -> None:
    with pytest.raises(buttress.InvalidURLError) as caught:
        cls(base_url="http://[::1/")
    assert isinstance(caught.value, httpx.InvalidURL)
    assert str(caught.value) == f"{cls.__name__}(base_url=...) not a valid URL: Invalid port: ':1'"


@pytest.mark.parametrize("url", ["http://alice:pw-SECRET@[::1", "alice:pw-SECRET@api.test"])
def test_a_bad_base_url_is_not_echoed(url: str) -> None:
    with pytest.raises(buttress.ConfigurationError) as caught:
        buttress.Client(base_url=url)
    assert "pw-SECRET" not in str(caught.value)


@pytest.mark.parametrize("cls", CLIENTS, ids=lambda cls: cls.__name__)
async def test_with_options_checks_names_and_values(
    cls: type[buttress.Client | buttress.AsyncClient],
) -> None:
    client = cls(base_url="http://api.test")
    try:
        with pytest.raises(buttress.ConfigurationError, match=r"\(retry=\.\.\.\) takes"):
            client.with_options(retry="yes")
        with pytest.raises(buttress.ConfigurationError) as caught:
            client.with_options(retries=2)
        assert str(caught.value) == (
            f"{cls.__name__}.with_options() got an unexpected keyword argument 'retries'; "
            "did you mean `retry=`?"
        )
        assert isinstance(caught.value, TypeError)
    finally:
        if isinstance(client, buttress.AsyncClient):
            await client.aclose()
        else:
            client.close()


# -- strict values: nothing is converted behind the caller's back --------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: _make(buttress.RetryConfig, retry_statuses={"503"}),
            "invalid RetryConfig: retry_statuses: must be status codes (ints from 100 to 599), "
            "like [502, 503]; found a str",
        ),
        (
            lambda: _make(buttress.RetryConfig, retry_statuses=[99]),
            "retry_statuses: must be status codes (ints from 100 to 599), like [502, 503]; "
            "found 99",
        ),
        (
            lambda: _make(buttress.RetryConfig, retry_methods=[1]),
            "invalid RetryConfig: retry_methods: must be method names (strings)",
        ),
        (
            lambda: _make(buttress.RetryConfig, max_attempts="3"),
            "invalid RetryConfig: max_attempts: Input should be a valid integer (got str)",
        ),
        (
            lambda: _make(buttress.TimeoutConfig, read="2"),
            "invalid TimeoutConfig: read: Input should be a valid number (got str)",
        ),
        (
            lambda: _make(buttress.RateLimitConfig, respect_retry_after=1),
            "invalid RateLimitConfig: respect_retry_after: Input should be a valid boolean (got 1)",
        ),
        (
            lambda: _make(buttress.RateLimitConfig, endpoints=[{"max_requests": "5"}]),
            "invalid RateLimitConfig: endpoints.0: invalid EndpointLimit: max_requests: "
            "Input should be a valid integer (got str)",
        ),
        (
            lambda: _make(buttress.CircuitBreakerConfig, failure_threshold=5.0),
            "invalid CircuitBreakerConfig: failure_threshold: Input should be a valid integer "
            "(got 5.0)",
        ),
        (
            lambda: _make(buttress.CacheConfig, cacheable_status_codes=["200"]),
            "invalid CacheConfig: cacheable_status_codes.0: Input should be a valid integer",
        ),
        (
            lambda: _make(buttress.LoggingConfig, redact_headers=[1]),
            "invalid LoggingConfig: redact_headers.0: Input should be a valid string (got 1)",
        ),
        (
            lambda: _make(buttress.TracingConfig, propagate="no"),
            "invalid TracingConfig: propagate: Input should be a valid boolean (got str)",
        ),
    ],
)
def test_a_value_of_the_wrong_type_is_refused_not_converted(make: Any, message: str) -> None:
    with pytest.raises(buttress.ConfigurationError) as caught:
        make()
    assert message in str(caught.value)


def test_collections_still_take_lists_and_sets_and_numbers_take_ints() -> None:
    assert buttress.RetryConfig(retry_statuses=[503]).retry_statuses == frozenset({503})
    assert buttress.RetryConfig(retry_methods={"get"}).retry_methods == frozenset({"GET"})
    assert _make(buttress.LoggingConfig, redact_headers=["X-Key"]).redact_headers == ("X-Key",)
    cache = _make(buttress.CacheConfig, cacheable_status_codes={200})
    assert cache.cacheable_status_codes == frozenset({200})
    limits = _make(buttress.RateLimitConfig, endpoints=[{"max_requests": 1}])
    assert limits.endpoints == (buttress.EndpointLimit(max_requests=1),)
    assert buttress.TimeoutConfig(read=3).read == 3.0
    assert buttress.RetryConfig.model_validate_json('{"retry_statuses": [503]}').retry_statuses


def test_the_environment_still_arrives_as_strings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUTTRESS_TIMEOUT", "5")
    monkeypatch.setenv("BUTTRESS_HTTP2", "false")
    monkeypatch.setenv("BUTTRESS_MAX_REDIRECTS", "3")
    settings = buttress.ButtressSettings()
    assert (settings.timeout, settings.http2, settings.max_redirects) == (5.0, False, 3)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"retry": "no"},
            "request option retry=... takes a RetryConfig, True, False or None, not str",
        ),
        (
            {"rate_limit": "x"},
            "request option rate_limit=... takes 'wait', 'raise', 'return' or None, not str",
        ),
        ({"total_timeout": "5"}, "request option total_timeout=... takes seconds"),
        ({"expected_statuses": "404"}, "request option expected_statuses=... takes a collection"),
        ({"max_response_size": -1}, "takes a size in bytes (an int >= 0) or None, not -1"),
        ({"idempotent": "yes"}, "request option idempotent=... takes True, False or None, not str"),
    ],
)
def test_per_request_options_check_their_values(values: dict[str, Any], message: str) -> None:
    with pytest.raises(buttress.ConfigurationError) as caught:
        buttress.options(**values)
    assert message in str(caught.value)


async def test_a_call_with_a_wrong_option_fails_before_anything_is_sent(
    make_client: Any, demo: Any
) -> None:
    client = make_client(base_url=demo.url)
    key = f"wrong-option-{client.is_async}"
    with pytest.raises(buttress.ConfigurationError, match=r"request option retry=\.\.\. takes"):
        await client.get("/flaky", params={"key": key, "failures": 1}, retry="no")
    with pytest.raises(buttress.ConfigurationError, match=r"expected_statuses=\.\.\. takes"):
        await client.get("/flaky", params={"key": key, "failures": 1}, expected_statuses=["404"])
    response = await client.get(
        "/flaky", params={"key": key, "failures": 1}, retry=False, expected_statuses={503}
    )
    assert response.status_code == 503  # the first attempt of this key: nothing was sent before


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        (
            buttress.transports.RetryTransport,
            "RetryTransport(config=...) takes a RetryConfig, not dict; "
            "build one with RetryConfig(**...)",
        ),
        (
            buttress.transports.CircuitBreakerTransport,
            "CircuitBreakerTransport(config=...) takes a CircuitBreakerConfig or a "
            "CircuitBreaker, not dict",
        ),
        (
            buttress.transports.RateLimitTransport,
            "RateLimitTransport(config=...) takes a RateLimitConfig, a RateLimiter or None, "
            "not dict",
        ),
        (
            buttress.transports.CacheTransport,
            "CacheTransport(config=...) takes a CacheConfig or None, not dict",
        ),
        (
            buttress.transports.LoggingTransport,
            "LoggingTransport(config=...) takes a LoggingConfig or None, not dict",
        ),
    ],
    ids=lambda value: getattr(value, "__name__", ""),
)
def test_a_layer_given_a_dict_for_its_config_says_what_it_takes(layer: Any, message: str) -> None:
    with pytest.raises(buttress.ConfigurationError) as caught:
        layer(httpx.HTTPTransport(), {"max_requests": 1})
    assert message in str(caught.value)
    limiter: Any = buttress.transports.RateLimiter
    with pytest.raises(buttress.ConfigurationError, match="takes a RateLimitConfig or None"):
        limiter({"max_requests": 1})


# -- unknown keywords --------------------------------------------------------------------------


@pytest.mark.parametrize("cls", CLIENTS, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize(
    ("keyword", "hint"),
    [
        ("retries", "; did you mean `retry=`?"),
        ("ratelimit", "; did you mean `rate_limit=`?"),
        ("verify_tls", "; did you mean `verify_ssl=`?"),
        ("http_2", "; did you mean `http2=`?"),
        ("colour", ""),
    ],
)
def test_an_unknown_client_keyword_names_the_closest_one(
    cls: type[buttress.Client | buttress.AsyncClient], keyword: str, hint: str
) -> None:
    make: Any = cls  # the keyword is wrong on purpose
    with pytest.raises(buttress.ConfigurationError) as caught:
        make(**{keyword: 3})
    assert str(caught.value) == (
        f"{cls.__name__}() got an unexpected keyword argument {keyword!r}{hint}"
    )
    assert isinstance(caught.value, TypeError)  # what Python raised for it before


async def test_an_unknown_call_keyword_names_the_closest_one(make_client: Any, demo: Any) -> None:
    client = make_client(base_url=demo.url)
    name = type(client.client).__name__
    with pytest.raises(TypeError) as caught:
        await client.get("/users/1", retries=3)
    assert isinstance(caught.value, buttress.ConfigurationError)
    assert str(caught.value) == (
        f"{name}.request() got an unexpected keyword argument 'retries'; did you mean `retry=`?"
    )
    with pytest.raises(buttress.ConfigurationError, match="did you mean `timeout=`"):
        await client.post("/users", json={}, timout=3)
    with pytest.raises(buttress.ConfigurationError, match="did you mean `retry=`"):
        client.client.paginate("/users", retries=3)  # at once, before any page is fetched
    with pytest.raises(buttress.ConfigurationError, match=r"^options\(\) got .* `retry=`"):
        buttress.options(retries=3)
