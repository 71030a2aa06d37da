"""Request bodies: one JSON encoding, whichever encoder is installed.

``encode_json`` turns dicts, lists, Pydantic models, dataclasses, dates, UUIDs,
decimals, ... into JSON bytes. Values are first made JSON-ready with
``pydantic_core.to_jsonable_python`` (``model_dump(mode="json", by_alias=True)``
semantics; NaN and infinities become ``null``, as in ``model_dump_json``), then
encoded by orjson when ``buttress[fast]`` is installed and by the standard
library otherwise. Both produce the same bytes for the same input: compact
separators, UTF-8 without ``\\u`` escapes. Where orjson would differ (integers
beyond 64 bits, floats it spells otherwise, such as ``1e-7``) the body falls back
to the standard library, so the output never depends on what is installed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any, TypeAlias

from pydantic_core import to_jsonable_python

from ._exceptions import ConfigurationError, ValidationError

__all__ = ["JSONSerializer", "encode_json", "jsonable"]

JSONSerializer: TypeAlias = Callable[[Any], "bytes | str"]
"""A custom JSON encoder for request bodies: takes the ``json=`` value, returns the body."""

# orjson and Python spell some floats differently (1e-7 / 1e-07, 0.00001085 /
# 1.085e-05). Every float-looking token of orjson's output is checked against
# Python's repr; any difference sends the body through json. (A match inside a
# string only costs the fallback, never a wrong body.)
_FLOAT_TOKEN = re.compile(rb"-?[0-9]+(?:\.[0-9]+)?[eE][-+]?[0-9]+|-?[0-9]+\.[0-9]+")


def _floats_agree(body: bytes) -> bool:
    return all(
        repr(float(token)).encode() == token
        for token in (match.group() for match in _FLOAT_TOKEN.finditer(body))
    )


def jsonable(value: Any) -> Any:
    """``value`` with models, dataclasses, dates, UUIDs, ... turned into JSON-ready values.

    Raises:
        ValidationError: ``value`` has no JSON form: an unknown type, bytes that are
            not UTF-8, nesting deeper than pydantic serializes, or two keys of one
            object that are the same once made strings (``1`` and ``"1"``).

    Examples:
        >>> from dataclasses import dataclass
        >>> @dataclass
        ... class Point:
        ...     x: int
        >>> jsonable({"p": Point(1), "nan": float("nan")})
        {'p': {'x': 1}, 'nan': None}
    """
    try:
        ready = to_jsonable_python(value, by_alias=True, inf_nan_mode="null")
    except (ValueError, RecursionError) as exc:  # unknown type, bytes not UTF-8, too deep
        raise ValidationError(f"request body is not JSON-serializable: {exc}") from exc
    if isinstance(value, _CONTAINERS):
        _check_keys(value)
    return ready


_CONTAINERS = (dict, list, tuple, set, frozenset)
_STR = frozenset({str})
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _check_keys(
    value: dict[Any, Any] | list[Any] | tuple[Any, ...] | set[Any] | frozenset[Any],
) -> None:
    """Refuse a dict whose keys collide once made JSON strings, as ``{1: "a", "1": "b"}``.

    JSON keys are strings: such keys would leave one member, and data would be lost
    without a word. Walks the plain containers (dicts, lists, tuples, sets) that
    ``to_jsonable_python`` has already walked, so without cycles and depth-bounded;
    models and dataclasses serialize their fields as pydantic says. (The type checks
    run in C: this costs a fraction of the encoding.)
    """
    children: Iterable[Any]
    if isinstance(value, dict):
        if not _STR.issuperset(map(type, value)):
            _distinct_keys(value)
        children = value.values()
    else:
        children = value
    if _SCALARS.issuperset(map(type, children)):
        return
    for child in children:
        if isinstance(child, _CONTAINERS):
            _check_keys(child)


def _distinct_keys(value: dict[Any, Any]) -> None:
    keys = to_jsonable_python(dict.fromkeys(value), by_alias=True, inf_nan_mode="null")
    if len(keys) == len(value):
        return
    seen: dict[str, Any] = {}
    for key in value:
        name = next(iter(to_jsonable_python({key: None})))
        if name in seen:
            raise ValidationError(
                f"request body is not JSON-serializable: keys {seen[name]!r} and {key!r} of "
                f"one object are both {name!r} in JSON, and one would be lost"
            )
        seen[name] = key


def _stdlib_dumps(value: Any) -> bytes:
    return _utf8(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


@cache
def _orjson_dumps() -> Callable[[Any], bytes] | None:
    try:
        import orjson
    except ImportError:
        return None
    return orjson.dumps


def encode_json(value: Any, serializer: JSONSerializer | None = None) -> bytes:
    """The JSON body for ``value``: the client's ``serializer`` if set, else orjson or json.

    Examples:
        >>> from pydantic import BaseModel, Field
        >>> class NewUser(BaseModel):
        ...     full_name: str = Field(alias="fullName")
        >>> encode_json(NewUser(fullName="Zoë"))
        b'{"fullName":"Zo\\xc3\\xab"}'
    """
    if serializer is not None:
        return _serialized(serializer(value))
    ready = jsonable(value)
    dumps = _orjson_dumps()
    if dumps is None:
        return _stdlib_dumps(ready)
    try:
        body = dumps(ready)
    except TypeError:  # an integer beyond 64 bits, a lone surrogate (json judges)
        return _stdlib_dumps(ready)
    return body if _floats_agree(body) else _stdlib_dumps(ready)


def _serialized(body: object) -> bytes:
    """The body a custom ``json_serializer`` returned, as bytes."""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return _utf8(body)
    raise ConfigurationError(f"json_serializer must return bytes or str, not {type(body).__name__}")


def _utf8(text: str) -> bytes:
    try:
        return text.encode()
    except UnicodeEncodeError as exc:  # a lone surrogate ("\ud800") has no UTF-8 form
        raise ValidationError(
            f"request body is not JSON-serializable: {text[exc.start : exc.end]!r} "
            f"(a lone surrogate) at character {exc.start} is not valid in UTF-8"
        ) from exc
