"""Building a request: httpx's way, plus buttress's per-request options.

A call's keyword arguments are split between building the request and sending
it (:meth:`RequestBuilding._prepare`); the buttress options travel in the
request's extensions as a :class:`~buttress.RequestOptions` (one frozen default
shared by the usual call), and the request carries the client's vocabulary of
secrets.
"""

from __future__ import annotations

import inspect
import os
import sys
import warnings
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import httpx
from httpx import USE_CLIENT_DEFAULT

from ._arguments import unknown_argument
from ._config import APIVersion, TimeoutConfig, TimeoutTypes
from ._exceptions import ConfigurationError, InvalidURLError
from ._extensions import EXTENSION_KEY
from ._options import RequestOptions, check_options
from ._parsing import statuses_to_expect
from ._redact import Redactor, declare, userinfo_secrets
from ._sending import hide_secrets
from ._serialize import encode_json

if TYPE_CHECKING:
    from httpx._client import UseClientDefault

    from ._client_config import ClientConfig
    from ._network import ProxyOption
    from .policies.priority import Priority
    from .policies.retry import RetryConfig
    from .transports.middleware import MiddlewareTypes

__all__ = ["CALL_NAMES", "RequestBuilding"]


_PAGINATION_ARGS = ("pagination", "strategy", "max_pages", "max_items", "start_offset", "params")
# The per-request options build_request takes (they go into the RequestOptions), in the
# order build_request gathers them.
_CALL_OPTIONS = (
    *("raise_for_status", "expected_statuses", "retry", "cache_control", "proxy"),
    *("max_response_size", "middleware", "idempotent", "priority"),
)
_NO_CALL_OPTIONS = (None,) * len(_CALL_OPTIONS)


def _unbuildable(method: str, error: httpx.InvalidURL | UnicodeEncodeError) -> ConfigurationError:
    """Our error for a request httpx cannot build; it never shows the URL or a value."""
    if isinstance(error, httpx.InvalidURL):  # its message names the part, not the whole URL
        return InvalidURLError(f"invalid URL for {method.upper()}: {error}")
    # httpx writes str headers and cookies as ASCII
    return ConfigurationError(
        f"cannot build a {method.upper()} request: a header or cookie value is not ASCII "
        f"(character {error.start + 1} of the value); pass it as bytes, or encode it"
    )


class RequestBuilding:
    """The clients' ``build_request`` and the preparing of a call (no I/O here)."""

    if TYPE_CHECKING:  # the client's, named here for checkers only
        _config: ClientConfig
        _redactor: Redactor

    def build_request(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        content: httpx._types.RequestContent | None = None,
        data: httpx._types.RequestData | None = None,
        files: httpx._types.RequestFiles | None = None,
        json: Any = None,
        params: httpx._types.QueryParamTypes | None = None,
        headers: httpx._types.HeaderTypes | None = None,
        cookies: httpx._types.CookieTypes | None = None,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: dict[str, Any] | None = None,
        raise_for_status: bool | None = None,
        expected_statuses: Collection[int] | None = None,
        api_version: str | None = None,
        retry: RetryConfig | bool | None = None,
        middleware: Sequence[MiddlewareTypes] | None = None,
        cache_control: str | None = None,
        proxy: ProxyOption = None,
        max_response_size: int | None = None,
        idempotent: bool | None = None,
        priority: Priority | None = None,
    ) -> httpx.Request:
        """Build a request the way httpx does, adding buttress's per-request options.

        Examples:
            >>> from buttress import Client
            >>> with Client(base_url="https://api.example.com", api_version="2") as client:
            ...     client.build_request("GET", "/users").headers["Accept-Version"]
            '2'
        """
        given = (
            *(raise_for_status, expected_statuses, retry, cache_control, proxy),
            *(max_response_size, middleware, idempotent, priority),
        )
        extensions, timeout = self._extensions(extensions, timeout, given)
        body = None if json is None else encode_json(json, self._config.json_serializer)
        version = self._api_version(api_version)
        try:
            if version is not None and version.location == "path":
                url = version.prefixed(url, api_version)
            request = super().build_request(  # type: ignore[misc]
                method,
                url,
                content=content if body is None else body,
                data=data,
                files=files,
                params=params,
                headers=headers,
                cookies=cookies,
                timeout=timeout,
                extensions=extensions,
            )
        except (httpx.InvalidURL, UnicodeEncodeError) as exc:
            raise _unbuildable(method, exc) from None
        return self._completed(request, version, api_version, json_body=body is not None)

    def _api_version(self, api_version: str | None) -> APIVersion | None:
        """Where and how to send the API version: the client's, or the call's if it has none."""
        version = self._config.version
        if version is None and api_version is not None:
            return APIVersion(version=api_version)
        return version

    def _extensions(
        self, extensions: dict[str, Any] | None, timeout: Any, call_options: tuple[Any, ...]
    ) -> tuple[dict[str, Any], Any]:
        """A request's extensions with its :class:`RequestOptions`, and httpx's timeout.

        ``call_options`` are the call's values of ``_CALL_OPTIONS``, in that order.
        """
        config = self._config
        if call_options == _NO_CALL_OPTIONS and not extensions and timeout is USE_CLIENT_DEFAULT:
            # The usual call: every request shares the client's one frozen default.
            return {EXTENSION_KEY: config.request_options}, timeout
        given = dict(zip(_CALL_OPTIONS, call_options, strict=True))
        extensions = dict(extensions) if extensions else {}
        options = extensions.get(EXTENSION_KEY)
        options = options if isinstance(options, RequestOptions) else None
        changes = {name: value for name, value in given.items() if value is not None}
        if changes:
            check_options(changes)
            if "expected_statuses" in changes:
                changes["expected_statuses"] = frozenset(changes["expected_statuses"])
            changes.pop("middleware", None)  # appended to the current middleware below
        if given["middleware"]:
            before = (options or config.request_options).middleware
            changes["middleware"] = before + tuple(given["middleware"])
        if timeout is not USE_CLIENT_DEFAULT:
            timeout_config = TimeoutConfig.coerce(timeout)
            if timeout is None or isinstance(timeout, TimeoutConfig):
                changes["total_timeout"] = timeout_config.total
            timeout = timeout_config.to_httpx()
        if options is None and not changes:
            extensions[EXTENSION_KEY] = config.request_options  # one frozen default, shared
            return extensions, timeout
        current = replace(options or config.request_options, **changes)
        if options is not None and "total_timeout" not in changes and not options.total_timeout:
            current = replace(current, total_timeout=config.timeouts.total)
        # A buffered body gets the client's size limit; a stream is consumed in
        # constant memory and is limited only when the call asks.
        if current.max_response_size is None and not current.streamed:
            current = replace(current, max_response_size=config.max_response_size)
        extensions[EXTENSION_KEY] = current
        return extensions, timeout

    def _completed(
        self,
        request: httpx.Request,
        version: APIVersion | None,
        api_version: str | None,
        *,
        json_body: bool,
    ) -> httpx.Request:
        """httpx's ``request`` with what httpx does not know to add.

        The API version header, the JSON content type of a body httpx did not
        encode, and the client's vocabulary of secrets, with a repr hiding them.
        """
        if version is not None and version.location == "header":
            request.headers[version.header] = api_version or version.version
        if json_body and "content-type" not in request.headers:
            request.headers["Content-Type"] = "application/json"
        declare(request, self._redactor)
        routed = RequestOptions.of(request).proxy
        if isinstance(routed, str | httpx.URL):  # a proxy for this call: its password too
            declare(request, Redactor(values=userinfo_secrets(routed)))
        return hide_secrets(request)

    def _check_call_names(self, kwargs: Mapping[str, Any]) -> None:
        if not CALL_NAMES.issuperset(kwargs):
            name = next(name for name in kwargs if name not in CALL_NAMES)
            raise unknown_argument(f"{type(self).__name__}.request", name, CALL_NAMES)

    def _prepare(
        self,
        method: str,
        url: httpx.URL | str,
        kwargs: Any,
        *,
        streamed: bool = False,
        response_model: Any = None,
    ) -> tuple[httpx.Request, Any, Any, bool | None]:
        """Split a call's keyword arguments between building the request and sending it."""
        self._check_call_names(kwargs)
        arguments: dict[str, Any] = dict(kwargs)
        if arguments.get("cookies") is not None and not streamed:  # httpx's request() warns
            warnings.warn(_PER_REQUEST_COOKIES, DeprecationWarning, stacklevel=_callers_level())
        # A mapping of statuses to models: its error statuses are parsed, not raised. (Most
        # calls have no model; for them the ABC's isinstance, a call of its own, is skipped.)
        if response_model is not None and isinstance(response_model, Mapping):
            given = arguments.get("expected_statuses")
            check_options({"expected_statuses": given})
            expected = self._config.expected_statuses if given is None else frozenset(given)
            arguments["expected_statuses"] = expected | statuses_to_expect(response_model)
        auth = arguments.pop("auth", USE_CLIENT_DEFAULT)
        follow_redirects = arguments.pop("follow_redirects", USE_CLIENT_DEFAULT)
        strict = arguments.pop("strict", None)
        if streamed:
            extensions = dict(arguments.pop("extensions", None) or {})
            options = extensions.get(EXTENSION_KEY)
            options = options if isinstance(options, RequestOptions) else RequestOptions()
            extensions[EXTENSION_KEY] = replace(options, streamed=True)
            arguments["extensions"] = extensions
        return self.build_request(method, url, **arguments), auth, follow_redirects, strict

    def _pages(
        self, url: httpx.URL | str, response_model: Any, kwargs: Mapping[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        """The pages ``paginate`` walks, and the rest of ``kwargs``: what goes to every ``get``."""
        from .pagination import make_pages

        rest = dict(kwargs)
        options = {name: rest.pop(name) for name in _PAGINATION_ARGS if name in rest}
        self._check_call_names(rest)  # now, not when the first page is fetched
        return make_pages(url, response_model=response_model, **options), rest


def _callers_level() -> int:
    """The ``stacklevel`` of the first frame outside buttress: the line that made the call."""
    frame, level = sys._getframe(2), 2  # the frame that asks for it is inside, and its caller
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    return level


_PACKAGE = os.path.dirname(__file__) + os.sep
_PER_REQUEST_COOKIES = (
    "Setting per-request cookies=<...> is being deprecated, because "
    "the expected behaviour on cookie persistence is ambiguous. Set "
    "cookies directly on the client instance instead."
)


def _keywords(function: Callable[..., Any]) -> frozenset[str]:
    return frozenset(
        name
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    )


CALL_NAMES = _keywords(RequestBuilding.build_request) | {"auth", "follow_redirects", "strict"}
"""What request(), get(), post(), ... take besides method, url and response_model."""
