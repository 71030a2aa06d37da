"""Frozen configuration models.

Each layer's configuration is a frozen Pydantic model: validated once when the
client is built, shared safely between threads, never copied per request.
"""

from __future__ import annotations

import copy
import functools
import threading
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias, TypeVar, cast

import httpx
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    WithJsonSchema,
)

from ._exceptions import ConfigurationError, InvalidURLError

if TYPE_CHECKING:
    from pydantic import GetCoreSchemaHandler
    from pydantic_core import ErrorDetails, core_schema
    from typing_extensions import Self

__all__ = [
    "APIVersion",
    "AnyCollection",
    "DumpedAsRepr",
    "FrozenConfig",
    "PythonOnly",
    "TimeoutConfig",
    "TimeoutTypes",
    "check_base_url",
    "config_error",
    "construct",
    "defaults",
    "frozen_model_config",
    "require_config",
    "unknown_field",
    "validating",
]

# strict: a value of the wrong type is refused, never converted ("503" is not 503, 1 is not True).
# defer_build: a class builds its validator when first validating, not when its module is
# imported; a default client validates none of them (see defaults()).
# allow_inf_nan: no setting means infinity (None does: no timeout, no limit), and one would
# only fail later, deep in a clock or a socket.
frozen_model_config = ConfigDict(
    frozen=True,
    extra="forbid",
    arbitrary_types_allowed=True,
    strict=True,
    defer_build=True,
    allow_inf_nan=False,
)

_M = TypeVar("_M", bound=BaseModel)

_C = TypeVar("_C")
AnyCollection: TypeAlias = Annotated[_C, Strict(False)]
"""A tuple or frozenset field that accepts any iterable (a list, a set), its items
still checked strictly: ``AnyCollection[frozenset[int]]`` takes ``[503]``, not ``["503"]``."""

_FUNCTIONS = (
    types.FunctionType,
    types.MethodType,
    types.BuiltinFunctionType,
    functools.partial,
)


def _described(value: object) -> str:
    """A Python object as a logged configuration may show it: a function by its name only
    (a partial's or a bound method's repr shows what it holds, a webhook's URL, a
    client's key); any other object (a store, a backend) by its repr."""
    if isinstance(value, _FUNCTIONS):
        function = value.func if isinstance(value, functools.partial) else value
        return f"<function {getattr(function, '__qualname__', type(function).__name__)}>"
    return repr(value)


class _DumpedAsRepr:
    """pydantic's ``PlainSerializer(_described, ...)``, made when a schema is built.

    Not at import: its module costs every program's first client, and a default
    client builds no schema (see :func:`defaults`).
    """

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        from pydantic import PlainSerializer

        serializer = PlainSerializer(_described, return_type=str, when_used="json-unless-none")
        return serializer.__get_pydantic_core_schema__(source, handler)

    def __repr__(self) -> str:  # as a field's metadata shows it
        return "DumpedAsRepr"


DumpedAsRepr = _DumpedAsRepr()
"""In JSON, a Python object (a store, a backend) is written as its repr, a function as its
name."""

PythonOnly: TypeAlias = Annotated[
    _C,
    WithJsonSchema({"type": "null"}, mode="validation"),
    WithJsonSchema({"type": ["string", "null"]}, mode="serialization"),
    DumpedAsRepr,
]
"""An optional field only Python code can fill (a callable, a store): in JSON it can only be
``null``, its default, and the model's JSON schema says so instead of failing. Dumped to
JSON (``model_dump_json()``, to log a configuration), a value set is written as its repr
(buttress's stores and backends show no secret in theirs), a function as its name only."""


def defaults(model: type[_M]) -> _M:
    """The instance of ``model`` that holds every default: built once, shared, not validated.

    It equals ``model()`` for a model whose defaults no validator changes (pydantic
    runs field validators on defaults only when asked, and this skips model
    validators); building it this way spares a default client the validators of
    the models it holds.

    Examples:
        >>> defaults(TimeoutConfig) == TimeoutConfig(), defaults(TimeoutConfig).read
        (True, 30.0)
        >>> defaults(TimeoutConfig) is defaults(TimeoutConfig)
        True
    """
    return cast("_M", _shared_defaults(model))


@cache
def _shared_defaults(model: type[BaseModel]) -> BaseModel:
    return construct(model, {})


def construct(model: type[_M], values: Mapping[str, Any], given: Iterable[str] = ()) -> _M:
    """``model`` made of ``values`` already checked, defaults filled in as validation would.

    ``given`` names the fields to report as set (``model_fields_set``). pydantic's own
    ``model_construct`` deep-copies every default that is not a builtin; validation copies
    only the defaults it cannot hash, so a clock or a frozen configuration given as a
    default is the very object, here as there.

    Examples:
        >>> config = construct(TimeoutConfig, {"read": 2.0}, given=["read"])
        >>> config.read, config.connect, config.model_fields_set
        (2.0, 5.0, {'read'})
    """
    filled = dict(values)
    for name, field in model.model_fields.items():
        if name in filled or field.is_required():
            continue
        if field.default_factory is not None:
            filled[name] = cast("Callable[[], Any]", field.default_factory)()
        else:
            default = field.default
            filled[name] = default if _hashable(default) else copy.deepcopy(default)
    return model.model_construct(set(given), **filled)


def _hashable(value: object) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def unknown_field(model: type[BaseModel], name: str, nested: bool = False) -> str:
    """``unknown field 'name'``, with the closest field of ``model`` as a suggestion."""
    from difflib import get_close_matches  # loaded by a mistake only, not by every client

    close = [] if nested else get_close_matches(name.rpartition(".")[2], model.model_fields, n=1)
    return f"unknown field {name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")


def _problem(model: type[BaseModel], error: ErrorDetails) -> str:
    """One of pydantic's errors in a sentence: where, what, and the value when it is safe."""
    loc = error["loc"]
    where = ".".join(str(part) for part in loc)
    if error["type"] == "extra_forbidden":
        return unknown_field(model, where, nested=len(loc) > 1)
    field = model.model_fields.get(str(loc[0])) if loc else None
    prefix = model.model_config.get("env_prefix")  # settings: name the environment variable
    if field is not None and isinstance(prefix, str):
        where += f" ({prefix}{str(loc[0]).upper()})"
    what = error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    value = error["input"]
    # Numbers are shown; any other value by its type only, since a string may be a secret.
    if isinstance(error.get("ctx", {}).get("error"), ConfigurationError) or (
        field is not None and "Secret" in str(field.annotation)
    ):
        got = ""  # our own message (a nested model's, say) is complete; a secret is not shown
    elif value is None or isinstance(value, int | float):
        got = f" (got {value!r})"
    else:
        got = f" (got {type(value).__name__})"
    return f"{where}: {what}{got}" if where else f"{what}{got}"


def config_error(model: type[BaseModel], exc: ValidationError) -> ConfigurationError:
    """``exc`` as a :class:`ConfigurationError` naming ``model``, each field and what was wrong.

    Examples:
        >>> from buttress import RateLimitConfig
        >>> try:
        ...     RateLimitConfig(max_requests=0, burst=5)
        ... except ConfigurationError as e:
        ...     for problem in str(e).split("; "):
        ...         print(problem)
        invalid RateLimitConfig: max_requests: Input should be greater than 0 (got 0)
        unknown field 'burst' (did you mean 'burst_size'?)
    """
    errors = exc.errors(include_url=False)
    cause = errors[0].get("ctx", {}).get("error") if len(errors) == 1 else None
    if isinstance(cause, ConfigurationError) and not errors[0]["loc"]:
        return cause  # model_validate ran the model's own __init__, which said it all
    problems = "; ".join(_problem(model, error) for error in errors)
    return ConfigurationError(f"invalid {model.__name__}: {problems}")


_building = threading.RLock()


def _build_validator(model: type[BaseModel]) -> None:
    """Build ``model``'s deferred validator once, one thread at a time.

    pydantic builds it on first use; in pydantic 2.11.0 to 2.11.4 threads racing
    for that first build could be handed the base class's validator (pydantic
    issue 11849), so a configuration made in several threads at once failed.
    """
    if not model.__pydantic_complete__:
        with _building:
            if not model.__pydantic_complete__:
                model.model_rebuild()


@contextmanager
def validating(model: type[BaseModel]) -> Iterator[None]:
    """Validate into ``model`` inside: its validator built first, its errors made ours.

    pydantic's ``ValidationError`` raised inside becomes :func:`config_error`'s.
    """
    _build_validator(model)
    try:
        yield
    except ValidationError as exc:
        raise config_error(model, exc) from None


def require_config(owner: str, value: Any, *kinds: type, optional: bool = True) -> None:
    """Raise :class:`ConfigurationError` unless ``value`` is one of ``kinds`` (or ``None``).

    For the layers' ``config=`` arguments: a mapping is not turned into a
    configuration silently (it would fail later, with an ``AttributeError``).

    Examples:
        >>> from buttress import RateLimitConfig
        >>> try:
        ...     require_config("RateLimitTransport", {"max_requests": 5}, RateLimitConfig)
        ... except ConfigurationError as e:
        ...     print(e)
        RateLimitTransport(config=...) takes a RateLimitConfig or None, not dict; \
build one with RateLimitConfig(**...)
    """
    if (optional and value is None) or isinstance(value, kinds):
        return
    *others, last = [f"a {kind.__name__}" for kind in kinds] + (["None"] if optional else [])
    accepted = f"{', '.join(others)} or {last}" if others else last
    hint = f"; build one with {kinds[0].__name__}(**...)" if isinstance(value, Mapping) else ""
    raise ConfigurationError(
        f"{owner}(config=...) takes {accepted}, not {type(value).__name__}{hint}"
    )


def check_base_url(url: str | httpx.URL | None) -> str | httpx.URL | None:
    """``url`` if it can be a base URL: none, empty, or ``http(s)://`` with a host.

    An unparsable URL raises :class:`~buttress.InvalidURLError`, any other
    unusable one :class:`ConfigurationError`.

    Examples:
        >>> check_base_url("https://api.example.com/v1")
        'https://api.example.com/v1'
        >>> try:
        ...     check_base_url("api.example.com")
        ... except ConfigurationError as e:
        ...     print(e)
        needs a scheme and a host, like 'https://api.example.com'
        >>> try:
        ...     check_base_url("ftp://files.example.com")
        ... except ConfigurationError as e:
        ...     print(e)
        needs the http or https scheme, not 'ftp'
    """
    if url is None:
        return url
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:  # its message names the part, never the whole URL
        raise InvalidURLError(f"not a valid URL: {exc}") from None
    if str(parsed) and not (parsed.scheme and parsed.host):
        raise ConfigurationError("needs a scheme and a host, like 'https://api.example.com'")
    if str(parsed) and parsed.scheme not in ("http", "https"):
        raise ConfigurationError(f"needs the http or https scheme, not {parsed.scheme!r}")
    return url


class FrozenConfig(BaseModel):
    """Base of every buttress configuration model: validated once, immutable, shareable.

    Invalid values and unknown fields raise :class:`ConfigurationError` (a
    ``ValueError``) naming the model, the field and what was wrong, from the
    constructor, ``model_validate`` and ``model_copy(update=...)`` alike.
    Values are quoted only when they are numbers: a string may be a secret.
    Assigning to a field raises it too.

    Examples:
        >>> try:
        ...     TimeoutConfig(read=-1)
        ... except ConfigurationError as e:
        ...     print(e)
        invalid TimeoutConfig: read: Input should be greater than 0 (got -1)
        >>> TimeoutConfig(read=10).model_copy(update={"read": 20}).read
        20.0
    """

    model_config = frozen_model_config

    def __init__(self, **data: Any) -> None:
        with validating(type(self)):
            super().__init__(**data)

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Self:
        """Validate ``obj`` (a mapping, or an instance) into this model."""
        with validating(cls):
            return super().model_validate(obj, **kwargs)

    @classmethod
    def model_validate_json(cls, json_data: str | bytes | bytearray, **kwargs: Any) -> Self:
        """Validate a JSON document into this model."""
        with validating(cls):
            return super().model_validate_json(json_data, **kwargs)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy with ``update`` applied, validated like a new instance (pydantic's is not)."""
        copy = super().model_copy(deep=deep)
        if not update:
            return copy
        changed = type(self)(**{**dict(copy), **update})
        fields_set = self.model_fields_set | set(update)
        object.__setattr__(changed, "__pydantic_fields_set__", fields_set)
        return changed

    def __setattr__(self, name: str, value: Any) -> None:
        raise ConfigurationError(
            f"{type(self).__name__} is immutable; use .model_copy(update={{{name!r}: ...}})"
        )


class TimeoutConfig(FrozenConfig):
    """Timeouts in seconds; ``None`` means no limit for that phase.

    ``connect``, ``read``, ``write`` and ``pool`` are httpx's per-operation
    timeouts. ``total`` is one deadline for the whole logical request: every
    attempt, every backoff sleep and the body read.

    Examples:
        >>> TimeoutConfig(read=10).read
        10.0
        >>> TimeoutConfig.coerce(2.5).connect
        2.5
    """

    connect: float | None = Field(default=5.0, gt=0)
    read: float | None = Field(default=30.0, gt=0)
    write: float | None = Field(default=30.0, gt=0)
    pool: float | None = Field(default=10.0, gt=0)
    total: float | None = Field(default=None, gt=0)

    @classmethod
    def coerce(cls, value: TimeoutTypes) -> TimeoutConfig:
        """Accept what httpx accepts: a number (each phase), ``None``, a tuple or ``httpx.Timeout``.

        A number sets connect, read, write and pool alike, as in httpx; use
        ``TimeoutConfig(total=...)`` for an overall deadline.

        Examples:
            >>> TimeoutConfig.coerce(httpx.Timeout(3.0, read=7.0)).read
            7.0
        """
        if isinstance(value, TimeoutConfig):
            return value
        try:
            if value is None:
                return cls(connect=None, read=None, write=None, pool=None)
            if isinstance(value, httpx.Timeout):
                return cls(
                    connect=value.connect, read=value.read, write=value.write, pool=value.pool
                )
            if isinstance(value, tuple):
                connect, read, write, pool = value
                return cls(connect=connect, read=read, write=write, pool=pool)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(type(value).__name__)
            seconds = float(value)
            return cls(connect=seconds, read=seconds, write=seconds, pool=seconds)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(
                f"invalid timeout {value!r}: give finite seconds (> 0), None, a 4-tuple, "
                "an httpx.Timeout or a TimeoutConfig"
            ) from exc

    def to_httpx(self) -> httpx.Timeout:
        """The per-operation part as an ``httpx.Timeout``."""
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.pool)


TimeoutTypes: TypeAlias = (
    TimeoutConfig
    | httpx.Timeout
    | float
    | tuple[float | None, float | None, float | None, float | None]
    | None
)


class APIVersion(FrozenConfig):
    """Which API version to ask for, and how.

    ``location="header"`` sends ``header: version`` (``Accept-Version`` by
    default; GitHub uses ``X-GitHub-Api-Version``). ``location="path"`` puts
    ``/{version}`` in front of every relative path. A plain string given to a
    client means a header.

    Examples:
        >>> from buttress import Client
        >>> version = APIVersion(version="v2", location="path")
        >>> client = Client(base_url="http://127.0.0.1:1", api_version=version)
        >>> str(client.build_request("GET", "/users").url)
        'http://127.0.0.1:1/v2/users'
        >>> client.close()
    """

    version: str = Field(min_length=1)
    location: Literal["header", "path"] = "header"
    header: str = "Accept-Version"

    def prefixed(self, url: httpx.URL | str, version: str | None = None) -> httpx.URL | str:
        """``url`` with ``/{version}`` in front when relative; absolute URLs are left alone."""
        parsed = httpx.URL(url)
        if not parsed.is_relative_url:
            return url
        prefix = "/" + (version or self.version).strip("/") + "/"
        return parsed.copy_with(raw_path=prefix.encode("ascii") + parsed.raw_path.lstrip(b"/"))
