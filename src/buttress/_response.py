"""The response the facade returns, and turning error statuses into exceptions."""

from __future__ import annotations

import json as jsonlib
import time
from collections.abc import Collection
from typing import Any, Protocol

import httpx

from ._exceptions import InvalidJSONError, describe, status_error_class
from .policies.headers import parse_retry_after

__all__ = ["ErrorParser", "Response", "default_error_parser", "raise_for_status"]


class ErrorParser(Protocol):
    """Reads an API's error body into an exception message and ``details``.

    Return a message, ``(message, details)``, or ``None`` when the body says
    nothing useful. Exceptions inside a parser are ignored (the status error is
    raised with the default message).

    Example:
        >>> def parse(response: httpx.Response) -> tuple[str, Any] | None:
        ...     fault = response.json()["fault"]
        ...     return fault["text"], fault.get("code")
        >>> from buttress import Client
        >>> client = Client(base_url="https://api.example.com", error_parser=parse)
        >>> client.close()
    """

    def __call__(self, response: httpx.Response, /) -> str | tuple[str, Any] | None: ...


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
            InvalidJSONError: the body is not JSON; the message shows the status,
                content type, position and a snippet.
        """
        try:
            return jsonlib.loads(self.content, **kwargs)
        except jsonlib.JSONDecodeError as exc:
            raise InvalidJSONError(
                exc,
                status_code=self.status_code,
                content_type=self.headers.get("content-type"),
                request=self._request,
            ) from exc
        except UnicodeDecodeError:
            # Not UTF-8/16/32: decode with the declared or detected charset.
            return jsonlib.loads(self.text, **kwargs)

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
    """Read the usual error bodies: ``{"error": {"message": ...}}``, ``{"message"}``, ...

    Returns the message and the decoded body as details, the start of a text body,
    or ``None`` for an empty body.

    Example:
        >>> default_error_parser(httpx.Response(400, json={"error": {"message": "bad id"}}))
        ('bad id', {'error': {'message': 'bad id'}})
    """
    try:
        body = jsonlib.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        text = response.text.strip()
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
