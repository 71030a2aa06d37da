"""APIs described by OpenAPI: each operation a method, checked on both sides.

``buttress.openapi.load(client, "/openapi.json")`` reads an OpenAPI 3.0, 3.1
or 3.2 document (JSON or YAML) and returns an :class:`API` whose attributes
are the document's operations, named by ``operationId``::

    api = buttress.openapi.load(client, "/openapi.json")
    user = api.get_user(user_id=1, response_model=User)
    api.create_user(body={"name": "Ada"})

On an :class:`~buttress.AsyncClient`, ``await buttress.openapi.aload(client,
url)`` loads the document and each operation returns an awaitable.

Every call goes through the client's ordinary ``request``, so it gets the
client's retries, limits, circuit breaker, cache, logging and redaction.
Around it:

- Before sending, the arguments are checked against the operation's path,
  query, header and cookie parameters (a required one missing, an unknown
  name, a value off its schema) and the ``body=`` against the request body's
  schema. Every problem is listed in one :class:`~buttress.SchemaValidationError`
  and nothing is sent.
- After, a JSON body is checked against the schema documented for the
  response's status (the exact status, then ``2XX``-style ranges, then
  ``default``); a body off it raises :class:`~buttress.SchemaValidationError`
  carrying the response. An error status raises the client's usual
  :class:`~buttress.HTTPError` subclass (:class:`~buttress.NotFoundError`, ...)
  with the parsed body as ``details``; when that body is off the documented
  error schema, a note on the exception says where.
- ``response_model=`` parses the body into a Pydantic model, as on the client.

Parameters are written in their documented ``style`` (OAS 3.1 4.8.12.4: ``matrix``,
``label`` and ``simple`` in the path, ``form``, ``spaceDelimited``,
``pipeDelimited`` and ``deepObject`` in the query, ``allowReserved``); form
bodies follow their Encoding Objects.

A document that cannot work is refused by :func:`load` with a
:class:`~buttress.ConfigurationError` naming where in it the fault is: a part of
the wrong type, a schema the dialect's meta-schema refuses, a parameter in an
unknown place or style, a path template without its path parameter (or one
without its template).

Schemas are checked by ``openapi-schema-validator`` (the JSON Schema dialects
of OpenAPI, on top of ``jsonschema``): ``pip install 'buttress[openapi]'``.

Names: an ``operationId`` or parameter name that is a Python identifier is
used as it is; otherwise :func:`python_name` says how it is reached
(``users.get`` -> ``users_get``, ``X-Request-Id`` -> ``X_Request_Id``). An
operation without ``operationId`` is named from its method and path
(``GET /users/{id}`` -> ``get_users_id``). Every operation is also found under
its original name in :attr:`API.operations`.

Where requests go: a client with a ``base_url`` sends every path under it
(the document's ``servers`` are not used); a client without one sends to the
document's first server, with its variables' defaults, resolved against the
URL the document came from when it is relative.

Pagination: :meth:`Operation.paginate` walks a GET operation with
``client.paginate``. The strategy comes from the document when it says: a
``Link`` header documented on the success response means ``Link`` pagination;
``offset`` and ``limit`` query parameters mean offset pagination; a ``page``
query parameter means page-number pagination; otherwise the first page
decides, as in ``client.paginate``. Each page is checked like any response.
"""

from __future__ import annotations

import datetime
import json
import keyword
import os
import pathlib
import re
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

import anyio
import httpx
import pydantic_core

from ._client import AsyncClient, Client
from ._exceptions import ConfigurationError, HTTPError, SchemaValidationError, describe
from ._response import Response

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

    from ._client import PaginateKwargs, RequestKwargs
    from .pagination import AsyncPaginator, PaginationStrategy, Paginator
    from .transports.middleware import CallNext

__all__ = ["API", "Operation", "Source", "aload", "load", "python_name"]

Source: TypeAlias = "str | httpx.URL | os.PathLike[str] | Mapping[str, Any]"
"""Where a document comes from: a URL (relative to the client's base URL, or
absolute), a file path (``pathlib.Path``), or the document itself as a mapping."""

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Keyword arguments of an operation call; a parameter of the same name gets a "_" suffix.
_RESERVED = frozenset({"body", "response_model", "options"})
# OpenAPI: header parameters of these names are ignored (the client sets them).
_IGNORED_HEADERS = frozenset({"accept", "content-type", "authorization"})
# OAS 3.1 4.8.12: where a parameter can be, and the styles each place takes (its default first).
# "cookie" is OAS 3.2's style: form without percent-encoding.
_STYLES = {
    "path": ("simple", "label", "matrix"),
    "query": ("form", "spaceDelimited", "pipeDelimited", "deepObject"),
    "header": ("simple",),
    "cookie": ("form", "cookie"),
}
# allowReserved (OAS 3.1 4.8.12.4.1): RFC 3986's reserved characters pass, but for those not
# allowed in a query ([ ] #) or meaning something in a form (& = +).
_RESERVED_KEPT = ":/?@!$'()*,;"
_DOCUMENT_URI = "urn:buttress:openapi-document"
_NO_BODY: Any = type("_NoBody", (), {"__repr__": lambda self: "<no body>"})()
_MAX_LISTED = 10


def python_name(name: str) -> str:
    """The Python identifier an ``operationId`` or parameter ``name`` is reached by.

    An identifier stays as it is. Otherwise each run of characters other than
    letters, digits and ``_`` becomes one ``_`` (none at either end), a leading
    digit gets a ``_`` before it, and a Python keyword a ``_`` after it.

    Examples:
        >>> python_name("get_user"), python_name("users.get"), python_name("X-Request-Id")
        ('get_user', 'users_get', 'X_Request_Id')
        >>> python_name("2fa-verify"), python_name("class"), python_name("page[size]")
        ('_2fa_verify', 'class_', 'page_size')
    """
    if not name.isidentifier():
        name = re.sub(r"\W+", "_", name, flags=re.ASCII).strip("_") or "_"
        if name[0].isdigit():
            name = f"_{name}"
    return f"{name}_" if keyword.iskeyword(name) else name


# --- the document ---------------------------------------------------------------------------


class _Schemas:
    """The document's JSON Schemas, checked in its OpenAPI dialect; ``$ref`` resolved."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        try:
            import openapi_schema_validator as dialects
            from referencing import Registry
            from referencing.jsonschema import DRAFT4, DRAFT202012
        except ImportError as exc:
            raise ConfigurationError(
                f"buttress.openapi needs the openapi extra ({exc}): pip install 'buttress[openapi]'"
            ) from None
        version = str(document.get("openapi", ""))
        if version.startswith("3.0"):
            # 3.0 has its own dialect (nullable, readOnly/writeOnly by direction)
            self._request_checker: Any = dialects.OAS30WriteValidator
            self._response_checker: Any = dialects.OAS30ReadValidator
            specification = DRAFT4
        elif version.startswith("3.1"):
            self._request_checker = self._response_checker = dialects.OAS31Validator
            specification = DRAFT202012
        elif version.startswith("3.2"):
            self._request_checker = self._response_checker = dialects.OAS32Validator
            specification = DRAFT202012
        else:
            found = f"openapi: {version!r}" if version else "no openapi field"
            raise ConfigurationError(
                f"not an OpenAPI 3 document ({found}); buttress.openapi reads OpenAPI 3.0-3.2 "
                "(convert a Swagger 2.0 document first)"
            )
        resource = specification.create_resource(document)
        self._registry: Any = Registry().with_resource(_DOCUMENT_URI, resource)
        self._checkers: dict[tuple[str, bool], Any] = {}
        self._loaded: set[str] = set()

    def load(self, node: Any, pointer: str) -> str:
        """``pointer``, once the schema there (``node``) is known to be usable; else raise.

        Checked against the dialect's meta-schema when the document is loaded, so that a
        broken schema stops ``load``, not the first call that needs it.
        """
        from jsonschema.exceptions import SchemaError

        target, where = self.resolve(node, pointer)
        if where in self._loaded:
            return pointer
        try:
            self._request_checker.check_schema(target)
        except SchemaError as exc:
            inside = "".join(f"/{_escape(str(step))}" for step in exc.absolute_path)
            raise ConfigurationError(
                f"the document's schema at {where}{inside} is broken: {exc.message}"
            ) from None
        self._loaded.add(where)
        return pointer

    def resolve(self, node: Any, pointer: str) -> tuple[Any, str]:
        """``node`` (at ``pointer``) with its ``$ref`` followed, and where it really is."""
        from referencing.exceptions import Unresolvable

        seen = set()
        while isinstance(node, Mapping) and isinstance(node.get("$ref"), str):
            reference = node["$ref"]
            if not reference.startswith("#") or reference in seen:
                raise ConfigurationError(
                    f"cannot follow $ref {reference!r} at {pointer or '/'}: only references "
                    "inside the document, without cycles, are followed"
                )
            seen.add(reference)
            try:
                node = self._registry.resolver().lookup(_DOCUMENT_URI + reference).contents
            except Unresolvable:
                raise ConfigurationError(
                    f"$ref {reference!r} at {pointer or '/'} points to nothing in the document"
                ) from None
            pointer = urllib.parse.unquote(reference[1:])
        return node, pointer

    def check(
        self, pointer: str, instance: Any, where: tuple[str, ...], *, request: bool, hide: bool
    ) -> list[ErrorDetails]:
        """What is wrong with ``instance`` against the schema at ``pointer``, as error details."""
        from jsonschema.exceptions import SchemaError, UnknownType
        from referencing.exceptions import Unresolvable

        checker = self._checkers.get((pointer, request))
        if checker is None:
            cls = self._request_checker if request else self._response_checker
            # A schema that is only a reference into the document: its own $refs resolve there.
            fragment = urllib.parse.quote(pointer, safe="/~")
            wrapper = {"$ref": f"{_DOCUMENT_URI}#{fragment}"}
            checker = cls(wrapper, registry=self._registry, format_checker=cls.FORMAT_CHECKER)
            self._checkers[(pointer, request)] = checker
        try:
            found = sorted(checker.iter_errors(instance), key=lambda e: list(e.absolute_path))
        except Unresolvable as exc:  # its message quotes the whole document
            problem = f"$ref {exc.ref!r} cannot be followed"
        except (SchemaError, UnknownType, re.error) as exc:
            problem = str(exc).splitlines()[0]
        except RecursionError:
            # Most often $refs that only lead to each other; a value nested thousands deep too.
            problem = "checking recursed too deep ($refs that only lead to each other?)"
        else:
            return [
                _detail(
                    error.validator,
                    (*where, *error.absolute_path),
                    _words(error),
                    "[hidden]" if hide else error.instance,
                )
                for error in found
            ]
        raise ConfigurationError(f"the document's schema at {pointer} is broken: {problem}")


def _object(node: Any, at: str) -> Mapping[str, Any]:
    """``node``, which the document at ``at`` must have as an object (a mapping)."""
    if not isinstance(node, Mapping):
        kind = type(node).__name__
        raise ConfigurationError(f"the document's {at} is a {kind}, not an object")
    return node


def _list(node: Any, at: str) -> Sequence[Any]:
    """``node``, which the document at ``at`` must have as a list."""
    if not isinstance(node, list | tuple):
        raise ConfigurationError(f"the document's {at} is a {type(node).__name__}, not a list")
    return node


def _string(node: Mapping[str, Any], key: str, at: str) -> str | None:
    """``node[key]`` (``None`` when absent), which must be text when present."""
    value = node.get(key)
    if value is not None and not isinstance(value, str):
        kind = type(value).__name__
        raise ConfigurationError(f"the document's {at}/{key} is a {kind}, not a string")
    return value


def _flag(node: Mapping[str, Any], key: str, at: str, default: bool) -> bool:
    """``node[key]`` (``default`` when absent), which must be a boolean when present."""
    value = node.get(key, default)
    if not isinstance(value, bool):
        kind = type(value).__name__
        raise ConfigurationError(f"the document's {at}/{key} is a {kind}, not a boolean")
    return value


def _detail(kind: Any, where: Sequence[Any], message: str, value: Any) -> ErrorDetails:
    return {"type": str(kind), "loc": tuple(where), "msg": message, "input": value}


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _words(error: Any) -> str:
    """What failed, in words that never quote the value (it may be a secret)."""
    keyword_, expected = error.validator, error.validator_value
    if keyword_ in (
        "required",
        "additionalProperties",
        "unevaluatedProperties",
        "dependentRequired",
    ):
        return str(error.message)  # names properties, not values
    if keyword_ == "type":
        return f"expected type {_short(expected)}"
    if keyword_ == "enum":
        return f"expected one of {_short(expected)}"
    if keyword_ == "const":
        return f"expected {_short(expected)}"
    if keyword_ in ("anyOf", "oneOf", "allOf", "not"):
        return f"does not match {keyword_} of the schema"
    return f"fails {keyword_} {_short(expected)}"


def _media_kind(media_type: str) -> str:
    """``json``, ``form``, ``multipart`` or ``other`` for a media type (parameters dropped)."""
    media_type = media_type.split(";")[0].strip().lower()
    if media_type == "application/json" or media_type.endswith("+json"):
        return "json"
    if media_type == "application/x-www-form-urlencoded":
        return "form"
    if media_type == "multipart/form-data":
        return "multipart"
    return "other"


def _matches(documented: str, media_type: str) -> bool:
    kind, _, sub = documented.split(";")[0].strip().lower().partition("/")
    their_kind, _, their_sub = media_type.partition("/")
    return kind in ("*", their_kind) and sub in ("*", their_sub)


def _read_parameter(schemas: _Schemas, raw: Any, at: str) -> _Parameter | None:
    """The parameter object at ``at`` (``None``: a header the client sets itself)."""
    node, at = schemas.resolve(raw, at)
    node = _object(node, at)
    name, location = _string(node, "name", at), _string(node, "in", at)
    if name is None or location is None:
        raise ConfigurationError(f"the parameter at {at} has no name or no 'in'")
    if location == "querystring":
        raise ConfigurationError(
            f"the parameter at {at} is in: querystring (OpenAPI 3.2), which buttress.openapi "
            "does not support; describe its fields as in: query parameters"
        )
    if location not in _STYLES:
        raise ConfigurationError(
            f"the parameter at {at} is in: {location!r}; a parameter is in "
            "'path', 'query', 'header' or 'cookie'"
        )
    if location == "header" and name.lower() in _IGNORED_HEADERS:
        return None
    style = _style(node, location, at)
    identifier = python_name(name)
    return _Parameter(
        name=name,
        identifier=f"{identifier}_" if identifier in _RESERVED else identifier,
        location=location,
        required=_flag(node, "required", at, False) or location == "path",
        schema=schemas.load(node["schema"], f"{at}/schema") if "schema" in node else None,
        style=style,
        explode=_flag(node, "explode", at, style == "form"),
        allow_reserved=_flag(node, "allowReserved", at, False),
    )


def _style(node: Mapping[str, Any], location: str, at: str) -> str:
    """The ``style`` at ``at``, one a parameter in ``location`` can have (its default if none)."""
    style = _string(node, "style", at) or _STYLES[location][0]
    if style not in _STYLES[location]:
        takes = ", ".join(_STYLES[location])
        raise ConfigurationError(
            f"the document's {at}/style is {style!r}, not a style of {location} values ({takes})"
        )
    return style


def _read_encoding(node: Any, name: str, at: str) -> _Encoding:
    """The Encoding Object at ``at``, for the body property ``name``."""
    node = _object(node, at)
    content_type = _string(node, "contentType", at)
    if not {"style", "explode", "allowReserved"} & node.keys():
        return _Encoding(content_type, None)
    # OAS 3.1 4.8.15.1: any of the three makes the property a query parameter; contentType ignored.
    style = _style(node, "query", at)
    explode = _flag(node, "explode", at, style == "form")
    allow = _flag(node, "allowReserved", at, False)
    parameter = _Parameter(name, name, "query", False, None, style, explode, allow)
    return _Encoding(content_type, parameter)


# --- operations -----------------------------------------------------------------------------


def _as_is(text: str) -> str:
    return text


@dataclass(frozen=True)
class _Parameter:
    name: str  # as documented
    identifier: str  # the keyword argument
    location: str  # path, query, header, cookie
    required: bool
    schema: str | None  # JSON pointer of its schema
    style: str
    explode: bool
    allow_reserved: bool = False

    def serialize(self, value: Any, encode: Callable[[str], str] = _as_is) -> list[tuple[str, str]]:
        """``(name, text)`` pairs for a JSON-like value, as the parameter's style writes it.

        OAS 3.1 4.8.12.4 (RFC 6570 for path styles). Each name, key and value in the text
        goes through ``encode`` before the delimiters join them, so a delimiter is never
        escaped and a delimiter inside a value always is. Names of separate pairs are left
        to the caller (a query encodes them, a header does not).
        """
        style, explode = self.style, self.explode
        if isinstance(value, Mapping):
            if style == "deepObject" or (explode and style in ("form", "cookie")):
                deep = style == "deepObject"
                return [
                    (f"{self.name}[{key}]" if deep else str(key), encode(_text(item)))
                    for key, item in value.items()
                ]
            if explode:  # R=100,G=200 in the style's delimiter
                texts = [f"{encode(str(key))}={encode(_text(item))}" for key, item in value.items()]
            else:  # R,100,G,200
                texts = [encode(text) for pair in value.items() for text in map(_text, pair)]
        elif isinstance(value, list | tuple):
            texts = [encode(_text(item)) for item in value]
            if explode and style in ("form", "cookie"):
                return [(self.name, text) for text in texts]
            if explode and style == "matrix":
                texts = [f"{encode(self.name)}={text}" for text in texts]
        else:
            return [(self.name, self._prefixed(encode(_text(value)), encode))]
        collection = isinstance(value, Mapping | list | tuple)
        if style == "matrix" and explode and collection:
            return [(self.name, "".join(f";{text}" for text in texts) or f";{encode(self.name)}")]
        delimiter = {"spaceDelimited": encode(" "), "pipeDelimited": encode("|")}.get(style, ",")
        if style == "label" and explode:
            delimiter = "."
        return [(self.name, self._prefixed(delimiter.join(texts), encode))]

    def _prefixed(self, text: str, encode: Callable[[str], str]) -> str:
        """``text`` with the prefix of a label (``.``) or matrix (``;name=``) style."""
        if self.style == "label":
            return f".{text}"
        if self.style == "matrix":
            return f";{encode(self.name)}={text}" if text else f";{encode(self.name)}"
        return text


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _nested(value: Any) -> bool:
    """Whether ``value`` holds lists or objects inside (no style writes those)."""
    if not isinstance(value, Mapping | list | tuple):
        return False
    items = value.values() if isinstance(value, Mapping) else value
    return any(isinstance(item, Mapping | list | tuple) for item in items)


def _percent(text: str) -> str:
    """``text`` percent-encoded but for RFC 3986's unreserved characters."""
    return urllib.parse.quote(text, safe="")


def _percent_reserved(text: str) -> str:
    """``text`` for ``allowReserved``: reserved characters and ``%XX`` triples pass."""
    parts = re.split(r"(%[0-9A-Fa-f]{2})", text)
    return "".join(
        part if i % 2 else urllib.parse.quote(part, safe=_RESERVED_KEPT)
        for i, part in enumerate(parts)
    )


def _form_encode(text: str) -> str:
    """``text`` as a form (``application/x-www-form-urlencoded``) writes it."""
    return urllib.parse.quote_plus(text, safe="")


@dataclass(frozen=True)
class _Encoding:
    """How one property of a form or multipart body is written (OAS 3.1 4.8.15)."""

    content_type: str | None  # as documented; None: by the value's type
    style: _Parameter | None  # style, explode or allowReserved given: written like a query


@dataclass(frozen=True)
class _Body:
    required: bool
    media_type: str
    schema: str | None
    encoding: Mapping[str, _Encoding] = field(default_factory=dict)


@dataclass(frozen=True)
class _Response:
    media_types: tuple[str, ...]
    schemas: Mapping[str, str]  # media type -> JSON pointer of its schema
    headers: frozenset[str]  # lowercased names


@dataclass
class _Call:
    """A checked call: where it goes and what it carries."""

    url: str  # without the query
    query: str = ""  # percent-encoded as the parameters' styles say
    params: dict[str, Any] = field(default_factory=dict)  # for paginate: httpx encodes them
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)  # json= / content= / files=

    @property
    def target(self) -> str:
        """The URL with its query."""
        return f"{self.url}?{self.query}" if self.query else self.url


class Operation:
    """One operation of an :class:`API`: call it with its parameters as keyword arguments.

    ``operation(**parameters, body=..., response_model=..., options=...)``
    sends the request and returns the :class:`~buttress.Response`, or the parsed
    model when ``response_model`` is given (on an ``AsyncClient``, an awaitable
    of either). ``body`` is the request body: any JSON-like value or Pydantic
    model for JSON and form bodies; for ``multipart/form-data``, a mapping of
    fields, where ``bytes``, a file object or an httpx ``(filename, content,
    content_type)`` tuple is a file; ``bytes`` or ``str`` for other media types
    (sent as they are, not checked). ``options`` takes the client's other
    request arguments (``timeout``, ``retry``, ``headers``, ``extensions``, ...);
    its headers replace the operation's of the same name, whatever their case.
    A parameter given ``None`` is left out.

    Examples:
        >>> from buttress import Client
        >>> document = {
        ...     "openapi": "3.1.0",
        ...     "paths": {"/users/{user_id}": {"get": {
        ...         "operationId": "get_user",
        ...         "parameters": [{"name": "user_id", "in": "path", "required": True,
        ...                         "schema": {"type": "integer"}}],
        ...         "responses": {"200": {"description": "a user"}}}}},
        ... }
        >>> with Client(base_url="https://api.example.com") as client:
        ...     operation = load(client, document).get_user
        >>> operation
        <Operation get_user: GET /users/{user_id}>
        >>> operation.parameters
        ('user_id',)
    """

    def __init__(
        self,
        api: API,
        name: str,
        method: str,
        path: str,
        node: Mapping[str, Any],
        shared_parameters: Sequence[tuple[Any, str]],
        pointer: str,
    ) -> None:
        self._api = api
        self.name = name
        """The name it is an attribute of the API by."""
        self.operation_id = _string(node, "operationId", pointer)
        """The ``operationId`` as documented (``None`` when there is none)."""
        self.method = method.upper()
        self.path = path
        self.__doc__ = _string(node, "summary", pointer) or _string(node, "description", pointer)
        schemas = api._schemas
        self._parameters = self._read_parameters(node, shared_parameters, pointer)
        self._by_identifier: dict[str, _Parameter] = {}
        for parameter in self._parameters:
            other = self._by_identifier.setdefault(parameter.identifier, parameter)
            if other is not parameter:
                raise ConfigurationError(
                    f"operation {name}: parameters {other.location} {other.name!r} and "
                    f"{parameter.location} {parameter.name!r} are both named "
                    f"{parameter.identifier!r} in Python"
                )
        self._body = self._request_body(node, pointer)
        self._responses: dict[str, _Response] = {}
        responses = _object(node.get("responses") or {}, f"{pointer}/responses")
        for status, raw in responses.items():
            response, at = schemas.resolve(raw, f"{pointer}/responses/{_escape(str(status))}")
            self._responses[str(status).upper()] = self._response(_object(response, at), at)
        self._check_answer = _ResponseCheck(self)

    @property
    def parameters(self) -> tuple[str, ...]:
        """The keyword arguments this operation takes (besides ``body``, ``options``, ...)."""
        return tuple(parameter.identifier for parameter in self._parameters)

    def __repr__(self) -> str:
        return f"<Operation {self.name}: {self.method} {self.path}>"

    def _read_parameters(
        self, node: Mapping[str, Any], shared: Sequence[tuple[Any, str]], pointer: str
    ) -> tuple[_Parameter, ...]:
        """The operation's parameters (its own over its path's), checked against its path."""
        listed = _list(node.get("parameters", []), f"{pointer}/parameters")
        own = [(item, f"{pointer}/parameters/{i}") for i, item in enumerate(listed)]
        parameters: dict[tuple[str, str], _Parameter] = {}
        for raw, at in [*shared, *own]:  # the operation's own win
            parameter = _read_parameter(self._api._schemas, raw, at)
            if parameter is not None:
                parameters[(parameter.name, parameter.location)] = parameter
        # OAS 3.1 4.8.12.1: a path parameter names a template; left out, {id} would go literally.
        templates = set(re.findall(r"\{([^{}]*)\}", self.path))
        in_path = {name for name, location in parameters if location == "path"}
        where = f"{self.method} {self.path} ({pointer})"
        if templates - in_path:
            missing = ", ".join(sorted(templates - in_path))
            raise ConfigurationError(f"{where}: no path parameter for the template(s) {missing}")
        if in_path - templates:
            extra = ", ".join(sorted(in_path - templates))
            raise ConfigurationError(f"{where}: path parameter(s) {extra} not in the path")
        return tuple(parameters.values())

    def _request_body(self, node: Mapping[str, Any], pointer: str) -> _Body | None:
        if "requestBody" not in node:
            return None
        schemas = self._api._schemas
        body, at = schemas.resolve(node["requestBody"], f"{pointer}/requestBody")
        body = _object(body, at)
        content = _object(body.get("content") or {}, f"{at}/content")
        media = {
            name: _object(item, f"{at}/content/{_escape(name)}") for name, item in content.items()
        }
        if not media:
            return None
        # JSON first, then a form, then multipart, then whatever the document lists first.
        kinds = ("json", "form", "multipart", "other")
        media_type = min(media, key=lambda name: kinds.index(_media_kind(name)))
        at = f"{at}/content/{_escape(media_type)}"
        chosen = media[media_type]
        schema = schemas.load(chosen["schema"], f"{at}/schema") if "schema" in chosen else None
        encoding = _object(chosen.get("encoding") or {}, f"{at}/encoding")
        return _Body(
            required=_flag(body, "required", at, False),
            media_type=media_type,
            schema=schema,
            encoding={
                name: _read_encoding(item, name, f"{at}/encoding/{_escape(name)}")
                for name, item in encoding.items()
            },
        )

    def _response(self, node: Mapping[str, Any], at: str) -> _Response:
        content = _object(node.get("content") or {}, f"{at}/content")
        schemas: dict[str, str] = {}
        for media, item in content.items():
            where = f"{at}/content/{_escape(media)}"
            if "schema" in _object(item, where):
                schemas[media] = self._api._schemas.load(item["schema"], f"{where}/schema")
        headers = frozenset(
            str(name).lower() for name in _object(node.get("headers") or {}, f"{at}/headers")
        )
        return _Response(tuple(content), schemas, headers)

    # -- calling ----------------------------------------------------------------------------

    def __call__(
        self,
        /,  # a parameter may be named "self"
        *,
        body: Any = _NO_BODY,
        response_model: Any = None,
        options: RequestKwargs | None = None,
        **arguments: Any,
    ) -> Any:
        if self._api.is_async:
            return self._acall(body, response_model, options, arguments)
        target, kwargs = self._request(body, response_model, options, arguments)
        client = self._api.client
        assert isinstance(client, Client)
        try:
            return client.request(self.method, target, **kwargs)
        except HTTPError as error:
            self._note_off_schema(error)
            raise

    async def _acall(
        self,
        body: Any,
        response_model: Any,
        options: RequestKwargs | None,
        arguments: dict[str, Any],
    ) -> Any:
        target, kwargs = self._request(body, response_model, options, arguments)
        client = self._api.client
        assert isinstance(client, AsyncClient)
        try:
            return await client.request(self.method, target, **kwargs)
        except HTTPError as error:
            self._note_off_schema(error)
            raise

    def _request(
        self,
        body: Any,
        response_model: Any,
        options: RequestKwargs | None,
        arguments: dict[str, Any],
    ) -> tuple[str, dict[str, Any]]:
        """The target and the client's keyword arguments for one call, sync or async."""
        call = self._prepare(arguments, body)
        return call.target, {"response_model": response_model, **self._kwargs(call, options)}

    def paginate(
        self,
        /,
        *,
        response_model: Any = None,
        options: PaginateKwargs | None = None,
        **arguments: Any,
    ) -> Paginator[Any] | AsyncPaginator[Any]:
        """Iterate over the items of every page (``for``, or ``async for`` on an AsyncClient).

        A GET operation only. The strategy is the document's (see the module's
        notes) unless ``options`` gives ``pagination=`` or ``strategy=``; the
        parameters the strategy fills (``offset``, ``page``, ...) need not be
        given even when required. ``response_model`` parses each item.

        Examples:
            >>> from buttress import Client
            >>> document = {"openapi": "3.1.0", "paths": {"/users": {"get": {
            ...     "operationId": "list_users",
            ...     "parameters": [{"name": "offset", "in": "query"},
            ...                    {"name": "limit", "in": "query"}],
            ...     "responses": {"200": {"description": "users"}}}}}}
            >>> with Client(base_url="https://api.example.com") as client:
            ...     type(load(client, document).list_users.pagination_strategy).__name__
            'OffsetLimitPagination'
        """
        if self.method != "GET":
            raise ConfigurationError(
                f"{self.name} is a {self.method}; only GET operations paginate"
            )
        kwargs: dict[str, Any] = dict(options or {})
        if "params" in kwargs:
            raise ConfigurationError(f"give {self.name}'s query parameters by name, not params=")
        strategy = self.pagination_strategy
        if strategy is not None and not {"pagination", "strategy"} & kwargs.keys():
            kwargs["pagination"] = strategy
        call = self._prepare(arguments, _NO_BODY, filled=_filled_by(kwargs))
        kwargs["headers"] = _merged(call.headers, kwargs.get("headers"))
        kwargs["middleware"] = [*(kwargs.get("middleware") or ()), self._check_answer]
        return self._api.client.paginate(
            call.url, response_model=response_model, params=call.params, **kwargs
        )

    @property
    def pagination_strategy(self) -> PaginationStrategy | None:
        """The strategy the document implies (``None``: the first page decides)."""
        from .pagination import LinkHeaderPagination, OffsetLimitPagination, PageNumberPagination

        query = {p.name for p in self._parameters if p.location == "query"}
        size = next((n for n in ("per_page", "page_size", "size", "limit") if n in query), None)
        success = [r for status, r in self._responses.items() if status.startswith("2")]
        # results_key=None: the items are the list body, or the first list under a usual key
        if any("link" in response.headers for response in success):
            return LinkHeaderPagination(per_page_param=size or "per_page")
        if {"offset", "limit"} <= query:
            return OffsetLimitPagination(results_key=None)
        if "page" in query:
            return PageNumberPagination(per_page_param=size or "per_page", results_key=None)
        return None

    def _kwargs(self, call: _Call, options: Mapping[str, Any] | None) -> dict[str, Any]:
        kwargs = dict(options or {})
        given = kwargs.keys() & {"params", "json", "data", "content", "files"}
        if given:
            raise ConfigurationError(
                f"{self.name} takes its parameters by name and its body as body=, "
                f"not {', '.join(sorted(given))} in options"
            )
        kwargs["headers"] = headers = _merged(call.headers, kwargs.get("headers"))
        kwargs["middleware"] = [*(kwargs.get("middleware") or ()), self._check_answer]
        content_type = next((_str(v) for n, v in headers if _str(n).lower() == "content-type"), "")
        raw = "content" in call.body and _media_kind(content_type) == "multipart"
        if raw and "boundary=" not in content_type.lower():
            raise ConfigurationError(
                f"{self.name}: a multipart/form-data body given as bytes needs its boundary "
                "in options={'headers': {'Content-Type': ...}}; or give the fields as a "
                "mapping, and they are written as parts"
            )
        return {**kwargs, **call.body}

    def _prepare(
        self, arguments: Mapping[str, Any], body: Any, *, filled: frozenset[str] = frozenset()
    ) -> _Call:
        """Check the arguments and body against the document; what to send, or raise."""
        errors: list[ErrorDetails] = []
        given: dict[_Parameter, Any] = {}
        for identifier, value in arguments.items():
            parameter = self._by_identifier.get(identifier)
            if parameter is None:
                takes = ", ".join(self.parameters) or "none"
                errors.append(
                    _detail(
                        "unknown",
                        ("arguments", identifier),
                        f"unknown parameter (takes: {takes})",
                        None,  # a misspelt name may hold a secret
                    )
                )
            elif value is not None:
                given[parameter] = value
        schemas = self._api._schemas
        for parameter in self._parameters:
            where = (parameter.location, parameter.name)
            hide = parameter.location in ("header", "cookie")
            if parameter not in given:
                if parameter.required and parameter.name not in filled:
                    errors.append(_detail("missing", where, "required parameter missing", None))
                continue
            value = given[parameter] = _jsonable(given[parameter], where, errors)
            if _nested(value):  # RFC 6570 has no way to write them (str() would send a repr)
                message = f"a {parameter.location} parameter cannot hold nested lists or objects"
                errors.append(_detail("nested", where, message, None))
                continue
            in_path = parameter.location == "path" and value is not None
            if in_path and not any(text for _, text in parameter.serialize(value)):
                # /users/{id} with id "" (or []) is /users/, another resource
                errors.append(_detail("empty", where, "empty path parameter", None))
                continue
            if parameter.schema is not None and value is not None:
                errors += schemas.check(parameter.schema, value, where, request=True, hide=hide)
        payload = self._payload(body, errors)
        if errors:
            raise SchemaValidationError(
                f"{self.name} ({self.method} {self.path}) not sent, its arguments do not match "
                f"the document: {_listing(errors)}",
                operation=self.name,
                errors=errors,
            )
        return self._call(given, payload)

    def _payload(self, body: Any, errors: list[ErrorDetails]) -> dict[str, Any]:
        """The request body as ``json=``, ``content=`` or ``files=`` (problems go to ``errors``)."""
        spec = self._body
        if body is _NO_BODY:
            if spec is not None and spec.required:
                errors.append(_detail("missing", ("body",), "request body required", None))
            return {}
        if spec is None:
            errors.append(
                _detail("unknown", ("body",), "this operation takes no request body", None)
            )
            return {}
        kind = _media_kind(spec.media_type)
        content_type = {"Content-Type": spec.media_type}
        if kind == "other" or (kind == "multipart" and isinstance(body, bytes | str)):
            if not isinstance(body, bytes | str):
                errors.append(
                    _detail("type", ("body",), f"{spec.media_type} takes bytes or str", None)
                )
            return {"content": body, "headers": content_type}
        if kind == "multipart":
            return _multipart(body, spec, self._api._schemas, errors)
        value = _jsonable(body, ("body",), errors)
        if spec.schema is not None:
            errors += self._api._schemas.check(
                spec.schema, value, ("body",), request=True, hide=False
            )
        if kind == "form":
            return {"content": _form(value, spec.encoding, errors), "headers": content_type}
        return {
            "json": value,
            "headers": {} if spec.media_type == "application/json" else content_type,
        }

    def _call(self, given: Mapping[_Parameter, Any], payload: dict[str, Any]) -> _Call:
        path = self.path
        call = _Call(url="")
        query: list[str] = []
        cookies: list[str] = []
        for parameter, value in given.items():
            if parameter.location == "path":
                [(_, text)] = parameter.serialize(value, _percent)
                path = path.replace(f"{{{parameter.name}}}", text)
            elif parameter.location == "query":
                encode = _percent_reserved if parameter.allow_reserved else _percent
                pairs = parameter.serialize(value, encode)
                query += [f"{_percent(name)}={text}" for name, text in pairs]
                for name, text in parameter.serialize(value):  # for paginate, which encodes
                    call.params.setdefault(name, []).append(text)
            elif parameter.location == "header":
                call.headers[parameter.name] = ",".join(t for _, t in parameter.serialize(value))
            else:  # a cookie; OAS 3.2's cookie style is not percent-encoded
                encode = _as_is if parameter.style == "cookie" else _percent
                cookies += [f"{name}={text}" for name, text in parameter.serialize(value, encode)]
        if cookies:
            call.headers["Cookie"] = "; ".join(cookies)
        call.headers.update(payload.pop("headers", {}))
        call.body = payload
        # "." or ".." as a whole segment (a value, or values side by side) would move the URL up.
        segments = path.split("/")
        path = "/".join(s.replace(".", "%2E") if s in (".", "..") else s for s in segments)
        call.url = self._api.server + path
        call.query = "&".join(query)
        return call

    # -- the answer -------------------------------------------------------------------------

    def _documented(self, status: int) -> _Response | None:
        responses = self._responses
        return (
            responses.get(str(status))
            or responses.get(f"{status // 100}XX")
            or responses.get("DEFAULT")
        )

    def _problems_in(self, response: httpx.Response) -> list[ErrorDetails]:
        """What is wrong with ``response`` (its body read) against the document; ``[]`` if nothing.

        Only what the document says is checked: an undocumented status, or a
        documented one without content, passes.
        """
        documented = self._documented(response.status_code)
        if documented is None or not documented.media_types or self.method == "HEAD":
            return []
        media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        where = ("response",)
        if not response.content:
            return [_detail("missing", where, "empty body where the document describes one", None)]
        matched = next(
            (media for media in documented.media_types if _matches(media, media_type)), None
        )
        if matched is None:
            listed = ", ".join(documented.media_types)
            message = f"content type {media_type or 'unset'!r} is not one documented ({listed})"
            return [_detail("content_type", where, message, media_type)]
        pointer = documented.schemas.get(matched)
        if pointer is None or _media_kind(media_type) != "json":
            return []
        # Response.json raises InvalidJSONError; the facade makes httpx's response ours later.
        body = Response.json(response)  # type: ignore[arg-type]
        return self._api._schemas.check(pointer, body, where, request=False, hide=False)

    def _note_off_schema(self, error: HTTPError) -> None:
        """Say on ``error`` when its body is off the schema documented for its status."""
        try:
            errors = self._problems_in(error.response)
        except Exception:  # an unreadable error body must not hide the error itself
            return
        if errors:
            note = (
                f"its body does not match the {error.status_code} response documented "
                f"for {self.name}: {_listing(errors)}"
            )
            error.__notes__ = [*getattr(error, "__notes__", ()), note]  # type: ignore[attr-defined]  # PEP 678 (3.10 too)


def _form(value: Any, encoding: Mapping[str, _Encoding], errors: list[ErrorDetails]) -> str:
    """An ``application/x-www-form-urlencoded`` body, each property as OAS 3.1 4.8.15 says.

    With ``style``, ``explode`` or ``allowReserved`` in its Encoding Object, a property is
    written like a query parameter; otherwise by its content type: an object (or a value
    documented as JSON) as JSON text, an array as one pair per item, anything else as text.
    """
    if not isinstance(value, Mapping):
        if not any(error["loc"] == ("body",) for error in errors):  # not twice with the schema's
            errors.append(_detail("type", ("body",), "a form body is an object", None))
        return ""
    pairs: list[str] = []
    for name, item in value.items():
        how = encoding.get(name, _Encoding(None, None))
        if item is None:  # OAS Appendix B leaves null to us: left out, as a None parameter is
            continue
        if how.style is not None:
            if _nested(item):
                message = f"the {how.style.style} style cannot write nested lists or objects"
                errors.append(_detail("nested", ("body", name), message, None))
                continue
            encode = _percent_reserved if how.style.allow_reserved else _form_encode
            written = how.style.serialize(item, encode)
            pairs += [f"{_form_encode(key)}={text}" for key, text in written]
            continue
        as_json = how.content_type is not None and _media_kind(how.content_type) == "json"
        for part in item if isinstance(item, list) else [item]:
            if as_json or isinstance(part, Mapping | list):
                text = json.dumps(part, separators=(",", ":"), ensure_ascii=False)
            else:
                text = _text(part)
            pairs.append(f"{_form_encode(name)}={_form_encode(text)}")
    return "&".join(pairs)


def _is_file(value: Any) -> bool:
    """Whether a multipart field's value is a file: bytes, a file object or an httpx tuple."""
    return isinstance(value, bytes | bytearray | tuple) or hasattr(value, "read")


def _multipart(
    body: Any, spec: _Body, schemas: _Schemas, errors: list[ErrorDetails]
) -> dict[str, Any]:
    """A ``multipart/form-data`` body as httpx ``files=`` (so httpx sets the boundary).

    Each field is a part, each item of a list one part of the same name (OAS 3.1 4.8.14):
    a file as a file part, an object as ``application/json``, anything else as text.
    Files are not checked against the schema (it describes them as binary strings).
    """
    if not isinstance(body, Mapping):
        body = _jsonable(body, ("body",), errors)  # a model: its fields
        if not isinstance(body, Mapping):
            message = "multipart/form-data takes a mapping of fields, or bytes"
            errors.append(_detail("type", ("body",), message, None))
            return {}
    files = {
        name
        for name, value in body.items()
        if _is_file(value) or (isinstance(value, list) and any(map(_is_file, value)))
    }
    fields = {
        name: "" if name in files else _jsonable(value, ("body", name), errors)
        for name, value in body.items()
    }
    if spec.schema is not None:
        found = schemas.check(spec.schema, fields, ("body",), request=True, hide=False)
        errors += [error for error in found if error["loc"][1:2] not in {(name,) for name in files}]
    parts: list[tuple[str, Any]] = []
    for name, value in body.items():
        value = value if name in files else fields[name]
        content_type = spec.encoding.get(name, _Encoding(None, None)).content_type
        for item in value if isinstance(value, list) else [value]:
            if item is not None:
                parts.append((name, _part(item, content_type)))
    if not parts:  # httpx sends no body for no files; an empty multipart body is one boundary
        boundary = "buttress-empty-form"
        content_type = f"multipart/form-data; boundary={boundary}"
        return {
            "content": f"--{boundary}--\r\n".encode(),
            "headers": {"Content-Type": content_type},
        }
    return {"files": parts}


def _part(item: Any, content_type: str | None) -> Any:
    """One multipart part, as httpx ``files=`` takes it: a file or ``(None, text, type)``."""
    # a documented single type (not "image/*" nor a list) names the part's type
    concrete = content_type if content_type and not re.search(r"[*,]", content_type) else None
    if isinstance(item, bytes | bytearray):
        return ("upload", bytes(item), concrete or "application/octet-stream")
    if _is_file(item):
        return item
    if isinstance(item, Mapping | list) or (concrete and _media_kind(concrete) == "json"):
        return (None, json.dumps(item, separators=(",", ":")), concrete or "application/json")
    return (None, _text(item)) if concrete is None else (None, _text(item), concrete)


def _str(text: str | bytes) -> str:
    return text.decode("latin-1") if isinstance(text, bytes) else text


def _merged(ours: Mapping[str, str], given: Any) -> list[tuple[Any, Any]]:
    """``ours`` with the caller's headers over them, names matched without regard to case.

    Kept as pairs, not ``httpx.Headers``: that would write a non-ASCII str value as UTF-8,
    where the client refuses it.
    """
    if isinstance(given, httpx.Headers):
        theirs = given.multi_items()
    elif isinstance(given, Mapping):
        theirs = list(given.items())
    else:
        theirs = list(given or ())
    replaced = {_str(name).lower() for name, _ in theirs}
    return [(n, v) for n, v in ours.items() if n.lower() not in replaced] + theirs


def _listing(errors: Sequence[ErrorDetails]) -> str:
    listed = "; ".join(
        f"{'.'.join(map(str, error['loc']))}: {error['msg']}" for error in errors[:_MAX_LISTED]
    )
    more = f" (and {len(errors) - _MAX_LISTED} more)" if len(errors) > _MAX_LISTED else ""
    return f"{len(errors)} error(s): {listed}{more}"


def _escape(token: str) -> str:
    """A JSON pointer token (RFC 6901)."""
    return token.replace("~", "~0").replace("/", "~1")


def _jsonable(value: Any, where: tuple[str, ...], errors: list[ErrorDetails]) -> Any:
    """``value`` as JSON-like data (models, dates, enums converted); problems go to ``errors``."""
    try:
        return pydantic_core.to_jsonable_python(value, by_alias=True)
    except pydantic_core.PydanticSerializationError:
        message = f"a {type(value).__name__} cannot be written as JSON"
        errors.append(_detail("serialization", where, message, None))
        return None


def _filled_by(options: Mapping[str, Any]) -> frozenset[str]:
    """Query parameters a pagination strategy fills in itself."""
    strategy = options.get("pagination") or options.get("strategy")
    names = {
        getattr(strategy, name, None) for name in ("offset_param", "page_param", "cursor_param")
    }
    return frozenset(str(name) for name in names if name) or frozenset({"offset", "page", "cursor"})


class _ResponseCheck:
    """Per-call middleware: a successful answer's body must match the document."""

    def __init__(self, operation: Operation) -> None:
        self._operation = operation

    async def __call__(self, request: httpx.Request, call_next: CallNext) -> httpx.Response:
        response = await call_next(request)
        if response.status_code >= 400:  # the facade raises; the body is checked there
            return response
        is_async = getattr(call_next, "is_async", True)
        try:
            if is_async:
                await response.aread()
            else:
                response.read()
            errors = self._operation._problems_in(response)
        except BaseException:
            await response.aclose() if is_async else response.close()
            raise
        if errors:
            name = self._operation.name
            raise SchemaValidationError(
                f"response to {describe(request)} does not match the {response.status_code} "
                f"response documented for {name}: {_listing(errors)}",
                operation=name,
                errors=errors,
                response=response,
            )
        return response

    def __repr__(self) -> str:
        return f"<response check for {self._operation.name}>"


# --- the API --------------------------------------------------------------------------------


class API:
    """An OpenAPI document's operations, bound to a client; made by :func:`load`.

    ``api.<name>`` is an :class:`Operation`; ``api.operations`` maps every
    name, and every ``operationId`` as documented, to its operation.
    ``api.server`` is what operation paths are appended to (``""`` when the
    client's ``base_url`` is used).

    Examples:
        >>> from buttress import Client
        >>> document = {"openapi": "3.1.0", "paths": {"/health": {"get": {
        ...     "operationId": "health.check", "responses": {"200": {"description": "ok"}}}}}}
        >>> with Client(base_url="https://api.example.com") as client:
        ...     api = load(client, document)
        >>> api
        <API with 1 operation: health_check>
        >>> api.operations["health.check"] is api.health_check
        True
    """

    def __init__(
        self,
        client: Client | AsyncClient,
        document: Mapping[str, Any],
        *,
        url: httpx.URL | None = None,
    ) -> None:
        if not isinstance(client, Client | AsyncClient):
            raise ConfigurationError(
                "buttress.openapi needs a buttress Client or AsyncClient, "
                f"not {type(client).__name__}"
            )
        if not isinstance(document, Mapping):
            raise ConfigurationError(
                f"an OpenAPI document is a mapping, not {type(document).__name__}"
            )
        self.client = client
        self.is_async = isinstance(client, AsyncClient)
        document = _as_json(document, {})
        self._schemas = _Schemas(document)
        components = _object(document.get("components") or {}, "/components")
        for name, schema in _object(components.get("schemas") or {}, "/components/schemas").items():
            # what the operations' schemas refer to: checked once here, not at first use
            self._schemas.load(schema, f"/components/schemas/{_escape(name)}")
        self.server = _server(client, document, url)
        self._operations: dict[str, Operation] = {}
        self.operations: Mapping[str, Operation] = {}
        """Every operation by name, and by its ``operationId`` as documented."""
        aliases: dict[str, Operation] = {}
        for path, item in _object(document.get("paths") or {}, "paths").items():
            at = f"/paths/{_escape(path)}"
            item, at = self._schemas.resolve(item, at)
            item = _object(item, at)
            listed = _list(item.get("parameters", []), f"{at}/parameters")
            shared = [(raw, f"{at}/parameters/{i}") for i, raw in enumerate(listed)]
            for method in _METHODS:
                if method not in item:
                    continue
                node = _object(item[method], f"{at}/{method}")
                operation_id = _string(node, "operationId", f"{at}/{method}")
                name = python_name(str(operation_id or f"{method} {path}"))
                if name in vars(self) or hasattr(API, name):  # api.server, api.operations, ...
                    name += "_"
                if name in self._operations:
                    other = self._operations[name]
                    raise ConfigurationError(
                        f"two operations are named {name!r} in Python: "
                        f"{other.method} {other.path} and {method.upper()} {path}"
                    )
                operation = Operation(self, name, method, path, node, shared, f"{at}/{method}")
                self._operations[name] = operation
                if operation_id is not None:
                    aliases[str(operation_id)] = operation
        self.operations = {**aliases, **self._operations}

    def __getattr__(self, name: str) -> Operation:
        operations = self.__dict__.get("_operations", {})
        if name in operations:
            return operations[name]  # type: ignore[no-any-return]
        known = ", ".join(sorted(operations)) or "none"
        raise AttributeError(f"the API has no operation {name!r} (it has: {known})")

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *self._operations})

    def __iter__(self) -> Iterator[Operation]:
        return iter(self._operations.values())

    def __repr__(self) -> str:
        count = len(self._operations)
        names = ", ".join(sorted(self._operations))
        return f"<API with {count} operation{'s' if count != 1 else ''}: {names}>"


def _server(
    client: Client | AsyncClient, document: Mapping[str, Any], url: httpx.URL | None
) -> str:
    """What operation paths are appended to: ``""`` under the client's base URL, else a server."""
    if str(client.base_url):
        return ""
    servers = _list(document.get("servers") or [{"url": "/"}], "/servers")
    server = _object(servers[0], "/servers/0")
    variables = _object(server.get("variables") or {}, "/servers/0/variables")

    def default(match: re.Match[str]) -> str:
        at = f"/servers/0/variables/{_escape(match[1])}"
        variable = _object(variables.get(match[1], {}), at)
        if "default" not in variable:
            raise ConfigurationError(f"server variable {match[1]!r} has no default")
        return str(variable["default"])

    address = re.sub(r"\{([^}]*)\}", default, _string(server, "url", "/servers/0") or "/")
    if httpx.URL(address).is_relative_url:
        if url is None:
            raise ConfigurationError(
                f"the document's server {address!r} is relative and the client has no base_url: "
                "give the client a base_url, or load the document from its URL"
            )
        address = str(url.join(address))
    return address.rstrip("/")


# --- loading --------------------------------------------------------------------------------


def _parse(content: bytes, source: object) -> Mapping[str, Any]:
    """A document from JSON or YAML text."""
    try:
        document = json.loads(content)
    except ValueError:
        try:
            import yaml
        except ImportError:
            raise ConfigurationError(
                f"{source} is not JSON; YAML documents need the openapi extra: "
                "pip install 'buttress[openapi]'"
            ) from None
        try:
            document = yaml.safe_load(content)
        except yaml.YAMLError as exc:
            raise ConfigurationError(f"{source} is neither JSON nor YAML: {exc}") from None
    if not isinstance(document, Mapping):
        raise ConfigurationError(f"{source} is not an OpenAPI document (not a mapping)")
    return document


def _as_json(node: Any, done: dict[int, Any]) -> Any:
    """A document as the same one in JSON would be: keys are text, dates are text.

    A hand-written ``200:`` is an int to YAML, and a JSON pointer (``/responses/200``)
    would not find it. ``done`` converts a node shared through YAML aliases once, so
    that a document of nested aliases is not expanded.
    """
    if id(node) in done:
        return done[id(node)]
    converted: Any
    if isinstance(node, Mapping):
        converted = done[id(node)] = {}
        for key, value in node.items():
            text = key if isinstance(key, str) else json.dumps(key, default=str).strip('"')
            converted[text] = _as_json(value, done)
    elif isinstance(node, list | tuple):
        converted = done[id(node)] = []
        converted.extend(_as_json(item, done) for item in node)
    elif isinstance(node, datetime.date):
        converted = node.isoformat()
    else:
        converted = node
    return converted


def load(client: Client | AsyncClient, source: Source) -> API:
    """Read an OpenAPI document and return its operations bound to ``client``.

    ``source`` is a URL (relative to the client's ``base_url``, or absolute),
    fetched with ``client.get`` (so with its retries, auth and cache), a file
    path (a ``pathlib.Path``), or the document as a mapping. On an
    ``AsyncClient``, a URL is loaded with :func:`aload`.

    Raises:
        ConfigurationError: the document cannot be read, is not OpenAPI 3 or
            cannot work (the message says where: a part of the wrong type, a
            broken schema, a parameter in an unknown place or style, a path
            template without its parameter), two operations get the same Python
            name, or the ``openapi`` extra is not installed.

    Examples:
        >>> import buttress
        >>> document = {"openapi": "3.1.0", "paths": {"/users/{user_id}": {"get": {
        ...     "operationId": "get_user",
        ...     "parameters": [{"name": "user_id", "in": "path", "required": True,
        ...                     "schema": {"type": "integer"}}],
        ...     "responses": {"200": {"description": "a user"}}}}}}
        >>> with buttress.Client(base_url="https://api.example.com") as client:
        ...     api = buttress.openapi.load(client, document)
        ...     try:
        ...         api.get_user(user_id="one")  # refused before sending
        ...     except buttress.SchemaValidationError as e:
        ...         print(e.errors[0]["loc"], e.errors[0]["msg"])
        ('path', 'user_id') expected type "integer"
    """
    if isinstance(source, Mapping):
        return API(client, source)
    if isinstance(source, os.PathLike):
        try:
            content = pathlib.Path(source).read_bytes()
        except OSError as exc:
            raise _unreadable(source, exc) from None
        return API(client, _parse(content, os.fspath(source)))
    if isinstance(client, AsyncClient):
        raise ConfigurationError(
            "an AsyncClient loads a URL with: await buttress.openapi.aload(client, url)"
        )
    return _fetched(client, client.get(_url(client, source)))


async def aload(client: AsyncClient, source: Source) -> API:
    """:func:`load` for an :class:`~buttress.AsyncClient`; operations return awaitables.

    Examples:
        >>> import buttress
        >>> async def main(url: str) -> None:
        ...     async with buttress.AsyncClient(base_url=url) as client:
        ...         api = await buttress.openapi.aload(client, "/openapi.json")
        ...         user = await api.get_user(user_id=1)
    """
    if not isinstance(client, AsyncClient):
        raise ConfigurationError(
            "aload is for an AsyncClient; a Client loads with buttress.openapi.load"
        )
    if isinstance(source, Mapping):
        return API(client, source)
    if isinstance(source, os.PathLike):
        try:
            content = await anyio.Path(os.fspath(source)).read_bytes()
        except OSError as exc:
            raise _unreadable(source, exc) from None
        return API(client, _parse(content, os.fspath(source)))
    return _fetched(client, await client.get(_url(client, source)))


def _url(client: Client | AsyncClient, source: str | httpx.URL) -> str | httpx.URL:
    if not isinstance(source, str | httpx.URL):
        raise ConfigurationError(
            "an OpenAPI document comes from a URL, a pathlib.Path or a mapping, "
            f"not {type(source).__name__}"
        )
    if not str(client.base_url) and httpx.URL(str(source)).is_relative_url:
        raise ConfigurationError(
            f"{str(source)!r} is a relative URL and the client has no base_url; "
            "to read a file, pass a pathlib.Path"
        )
    return source


def _fetched(client: Client | AsyncClient, response: httpx.Response) -> API:
    document = _parse(response.content, f"the document at {describe(response.request)}")
    return API(client, document, url=response.url)


def _unreadable(path: os.PathLike[str], error: OSError) -> ConfigurationError:
    return ConfigurationError(
        f"cannot read the OpenAPI document {os.fspath(path)!r}: {error.strerror or error}"
    )
