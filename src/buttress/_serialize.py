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
from collections.abc import Callable
from functools import cache
from typing import Any, TypeAlias

from pydantic_core import PydanticSerializationError, to_jsonable_python

from ._exceptions import ValidationError

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

    Examples:
        >>> from dataclasses import dataclass
        >>> @dataclass
        ... class Point:
        ...     x: int
        >>> jsonable({"p": Point(1), "nan": float("nan")})
        {'p': {'x': 1}, 'nan': None}
    """
    try:
        return to_jsonable_python(value, by_alias=True, inf_nan_mode="null")
    except PydanticSerializationError as exc:
        raise ValidationError(f"request body is not JSON-serializable: {exc}") from None


def _stdlib_dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


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
        body = serializer(value)
        return body.encode() if isinstance(body, str) else body
    ready = jsonable(value)
    dumps = _orjson_dumps()
    if dumps is None:
        return _stdlib_dumps(ready)
    try:
        body = dumps(ready)
    except TypeError:  # an integer beyond 64 bits
        return _stdlib_dumps(ready)
    return body if _floats_agree(body) else _stdlib_dumps(ready)
