"""``response_model``: a response's body parsed into the model its status names.

Examples:
    >>> import httpx
    >>> from buttress import Response
    >>> from buttress._response import default_error_parser
    >>> request = httpx.Request("GET", "https://api.example.com/users/1")
    >>> response = Response(200, json={"id": 1}, request=request)
    >>> parse_model(response, dict[str, int], default_error_parser, strict=False)
    {'id': 1}
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import httpx
import pydantic

from ._exceptions import ConfigurationError, HTTPError, ValidationError, describe
from ._response import ErrorParser, Response, raise_for_status

__all__ = ["mismatch", "parse_model", "statuses_to_expect"]


def parse_model(
    response: Response, response_model: Any, error_parser: ErrorParser, *, strict: bool
) -> Any:
    """``response``'s body as the model ``response_model`` names for its status.

    An error status without a model raises its :class:`HTTPError`; a body
    that does not fit, a :class:`ValidationError`. Every body :meth:`Response.json`
    reads is read, to the same data; an empty body (204, 304, HEAD, ...) is ``None``,
    which ``Model | None`` or a status mapped to ``None`` accepts.
    """
    return _parse(response, _model_for(response, response_model, error_parser), strict)


@lru_cache(maxsize=512)
def _cached_adapter(model: Any) -> pydantic.TypeAdapter[Any]:
    return pydantic.TypeAdapter(model)


def _adapter(model: Any) -> pydantic.TypeAdapter[Any]:
    try:
        try:
            return _cached_adapter(model)
        except TypeError:  # unhashable (an Annotated with unhashable metadata, ...)
            return pydantic.TypeAdapter(model)
    except pydantic.PydanticSchemaGenerationError as exc:
        raise ConfigurationError(
            f"response_model {model!r} is not a type pydantic can validate"
        ) from exc


def _parse(response: Response, model: Any, strict: bool) -> Any:
    adapter = _adapter(model)
    name = model.__name__ if isinstance(model, type) else repr(model)
    what = f"response to {describe(response.request)}"
    try:
        if not response.content:  # 204, 304, HEAD, ...: ``None`` for the model to take or not
            what = f"the empty body of the {response.status_code} {what}"
            return adapter.validate_python(None, strict=strict)
        try:
            return adapter.validate_json(_document(response), strict=strict)
        except pydantic.ValidationError as exc:
            if not any(error["type"] == "json_invalid" for error in exc.errors()):
                raise
        # JSON that pydantic's parser refuses (nested beyond its limit, lone surrogates,
        # a charset other than UTF-8/16/32) is read as .json() reads it; a body that is
        # not JSON raises its InvalidJSONError (position, snippet) here.
        return adapter.validate_python(response.json(), strict=strict)
    except pydantic.ValidationError as exc:
        hint = "" if response.content else f"; an empty body is None, which {name} | None accepts"
        raise mismatch(exc, what, name, model, response, hint=hint) from None


def _document(response: Response) -> bytes | str:
    """The body for pydantic's JSON parser, read as ``json.loads`` reads bytes.

    UTF-8 passes as it is; a byte-order mark, UTF-16 or UTF-32 is decoded first (the
    parser takes UTF-8 only). What does not decode passes as it is, for the parser to
    refuse and :meth:`Response.json` to judge.
    """
    content = response.content
    encoding = jsonlib.detect_encoding(content)
    if encoding == "utf-8":
        return content
    try:
        return content.decode(encoding)
    except UnicodeDecodeError:
        return content


def mismatch(
    exc: pydantic.ValidationError,
    what: str,
    name: str,
    model: Any,
    response: httpx.Response,
    *,
    hint: str = "",
) -> ValidationError:
    """Our error for ``exc``: ``what`` (a body, or part of one) does not match ``model``."""
    errors = exc.errors(include_url=False)
    summary = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in errors[:5]
    )
    return ValidationError(
        f"{what} does not match {name}: {len(errors)} error(s): {summary}{hint}",
        errors=errors,
        model=model,
        response=response,
    )


def _model_for(response: Response, response_model: Any, error_parser: ErrorParser) -> Any:
    """The model ``response_model`` gives ``response``'s status; raises when it gives none.

    A single model is for 2xx answers; a mapping names a model per status (``None``
    too: the model of a status without content). An
    error status without a model raises its :class:`HTTPError` (even when
    expected: there is no model to return), any other a :class:`ValidationError`.
    """
    status = response.status_code
    if isinstance(response_model, Mapping):
        if status in response_model:  # its model, None included (an empty 204's)
            return response_model[status]
        statuses = ", ".join(map(str, sorted(response_model)))
        model = "Model" if response.content else "None"  # an empty body is None
        note = f"not parsed: response_model maps {statuses} only; add {status}: {model} to parse it"
    elif 200 <= status < 300:
        return response_model
    else:
        name = getattr(response_model, "__name__", repr(response_model))
        note = (
            f"not parsed: response_model={name} is for 2xx answers; to parse a {status} too, "
            f"map statuses to models: response_model={{200: {name}, {status}: ...}}"
        )
    if status >= 400:
        try:
            raise_for_status(response, error_parser=error_parser)
        except HTTPError as error:
            error.__notes__ = [*getattr(error, "__notes__", ()), note]  # type: ignore[attr-defined]  # PEP 678 (3.10 too)
            raise
    raise ValidationError(
        f"response to {describe(response.request)} is a {status}; {note}",
        model=response_model,
        response=response,
    )


def statuses_to_expect(response_model: Mapping[Any, Any]) -> frozenset[int]:
    """The error statuses a ``{status: model}`` mapping names: returned and parsed, not raised."""
    for status in response_model:
        if not (isinstance(status, int) and not isinstance(status, bool) and 100 <= status <= 599):
            got = repr(status) if isinstance(status, int | float) else type(status).__name__
            raise ConfigurationError(
                f"response_model={{status: model, ...}} takes status codes (ints 100-599) "
                f"as keys, not {got}"
            )
    return frozenset(status for status in response_model if status >= 400)
