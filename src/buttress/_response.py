"""The response the facade returns, and turning error statuses into exceptions."""

from __future__ import annotations

import json as jsonlib
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterator
from typing import Any, TypeAlias

import httpx

from ._exceptions import InvalidJSONError, describe, map_exception, status_error_class
from .policies.headers import parse_retry_after

__all__ = ["ErrorParser", "Response", "default_error_parser", "raise_for_status"]

ErrorParser: TypeAlias = Callable[[httpx.Response], "str | tuple[str, Any] | None"]
"""Turns an error response into a message, or ``(message, details)``; ``None`` if it can't."""


class Response(httpx.Response):
    """An ``httpx.Response`` with buttress's additions.

    Every facade call returns one; it is an ``httpx.Response`` in every other way.

    Example:
        >>> response = Response(200, json={"id": 1})
        >>> (response.ok, response.json())
        (True, {'id': 1})
    """

    @property
    def ok(self) -> bool:
        """True for 1xx, 2xx and 3xx statuses: the request did not fail (requests' ``ok``)."""
        return self.status_code < 400

    def json(self, **kwargs: Any) -> Any:
        """Decode the body as JSON.

        Raises:
            InvalidJSONError: the body is not JSON (or is JSON no parser should
                accept: nested too deeply, numbers with thousands of digits); the
                message shows the status, content type, position and a snippet.
        """
        try:
            try:
                return jsonlib.loads(self.content, **kwargs)
            except UnicodeDecodeError:
                # Not UTF-8/16/32: decode with the declared or detected charset.
                return jsonlib.loads(_text_of(self), **kwargs)
        except jsonlib.JSONDecodeError as exc:
            error = exc
        except (ValueError, RecursionError) as exc:  # a 5,000-digit number; [[[[... nesting
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            error = jsonlib.JSONDecodeError(reason, _text_of(self)[:100], 0)
        raise InvalidJSONError(
            error,
            status_code=self.status_code,
            content_type=self.headers.get("content-type"),
            request=self._request,
        ) from error

    def iter_bytes(self, chunk_size: int | None = None) -> Iterator[bytes]:
        """Iterate over the decoded body; a body that fails to decode raises ``DecodingError``."""
        try:
            yield from super().iter_bytes(chunk_size)
        except Exception as exc:  # the content decoders (gzip, br, ...) raise httpx's errors
            mapped = map_exception(exc, self._request)
            if mapped is exc:
                raise
            raise mapped from exc

    async def aiter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        """The async twin of :meth:`iter_bytes`."""
        try:
            async for chunk in super().aiter_bytes(chunk_size):
                yield chunk
        except Exception as exc:
            mapped = map_exception(exc, self._request)
            if mapped is exc:
                raise
            raise mapped from exc

    def raise_for_status(self) -> Response:
        """Raise the matching buttress exception for a 4xx or 5xx status; return self otherwise.

        Example:
            >>> import buttress
            >>> request = httpx.Request("GET", "https://api.example.com/x")
            >>> try:
            ...     Response(404, request=request).raise_for_status()
            ... except buttress.NotFoundError as e:
            ...     print(e.status_code)
            404
        """
        raise_for_status(self)
        return self


def _text_of(response: httpx.Response) -> str:
    """The body as text; a body its declared charset cannot decode is read as UTF-8."""
    try:
        return response.text
    except UnicodeError:  # e.g. charset=utf-16 on a body without a byte order mark
        return response.content.decode("utf-8", "replace")


def _message_from(body: Any) -> str | None:
    """Find the human message in the usual error body shapes."""
    if isinstance(body, str):
        return body
    if isinstance(body, list) and body:
        return _message_from(body[0])
    if not isinstance(body, dict):
        return None
    for key in ("error", "message", "detail", "error_description", "title", "errors", "msg"):
        if key in body:
            found = _message_from(body[key])
            if found:
                return found
    return None


def default_error_parser(response: httpx.Response) -> tuple[str, Any] | None:
    """Read the usual error bodies: ``{"error": {"message"}}``, ``{"message"}``, ``{"detail"}``.

    Returns the message and the decoded body as details, the start of a text body,
    or ``None`` for an empty body.

    Example:
        >>> default_error_parser(httpx.Response(400, json={"error": {"message": "bad id"}}))
        ('bad id', {'error': {'message': 'bad id'}})
    """
    try:
        body = jsonlib.loads(response.content)
    except (ValueError, RecursionError):  # not JSON, not UTF-8/16/32, or nested too deeply
        text = _text_of(response).strip()
        return (text[:200], None) if text else None
    message = _message_from(body)
    return (message[:500] if message else response.reason_phrase, body)


def raise_for_status(
    response: httpx.Response,
    *,
    error_parser: ErrorParser = default_error_parser,
    expected: Collection[int] = (),
    now: float | None = None,
) -> None:
    """Raise the buttress exception for ``response``'s error status, unless it is ``expected``.

    The body must have been read.
    """
    status = response.status_code
    if status < 400 or status in expected:
        return
    parsed = None
    try:
        parsed = error_parser(response)
    except Exception:  # a broken parser must not hide the real error
        parsed = None
    message, details = (parsed, None) if isinstance(parsed, str) else (parsed or ("", None))
    text = f"{status} {response.reason_phrase} for {describe(response.request)}"
    if message:
        text = f"{text}: {message}"
    retry_after = parse_retry_after(response.headers, time.time() if now is None else now)
    raise status_error_class(status)(
        text,
        request=response.request,
        response=response,
        details=details,
        retry_after=retry_after,
    )
