"""What the clients' request methods accept and return, for type checkers.

``Client`` and ``AsyncClient`` share one implementation of ``get``, ``post``, ...
(each calls ``request``); the call signatures below tell checkers what each
returns: the :class:`~buttress.Response`, or the model ``response_model``
names, awaited or not. Nothing here runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, TypeVar, overload

import httpx

if TYPE_CHECKING:
    from httpx._client import UseClientDefault
    from typing_extensions import TypedDict, Unpack

    from ._config import TimeoutTypes
    from ._network import ProxyOption
    from ._response import Response
    from .auth import AuthTypes
    from .pagination import PaginationStrategy, StrategyName
    from .policies.retry import RetryConfig
    from .transports.middleware import MiddlewareTypes
else:
    from typing import TypedDict

__all__ = ["BodyKwargs", "ModelsByStatus", "PaginateKwargs", "RequestKwargs"]

T = TypeVar("T")
ModelsByStatus: TypeAlias = Mapping[int, type[T]]
"""``response_model={200: User, 404: ErrorBody}``: the model for each status parsed."""
URL: TypeAlias = "httpx.URL | str"


class RequestKwargs(TypedDict, total=False):
    """Keyword arguments every request method accepts (besides ``response_model``).

    For wrappers that pass them through with ``**kwargs: Unpack[RequestKwargs]``.

    Examples:
        >>> from typing_extensions import Unpack
        >>> from buttress import Client, Response
        >>> def get_user(client: Client, user_id: int, **kwargs: Unpack[RequestKwargs]) -> Response:
        ...     return client.get(f"/users/{user_id}", **kwargs)
    """

    params: httpx._types.QueryParamTypes | None
    headers: httpx._types.HeaderTypes | None
    cookies: httpx._types.CookieTypes | None
    auth: AuthTypes | UseClientDefault
    follow_redirects: bool | UseClientDefault
    timeout: TimeoutTypes | UseClientDefault
    extensions: dict[str, Any] | None
    strict: bool | None
    raise_for_status: bool | None
    expected_statuses: Collection[int] | None
    api_version: str | None
    retry: RetryConfig | bool | None
    middleware: Sequence[MiddlewareTypes] | None
    cache_control: str | None
    proxy: ProxyOption
    max_response_size: int | None


class PaginateKwargs(RequestKwargs, total=False):
    """Request arguments plus how to paginate (see :mod:`buttress.pagination`)."""

    pagination: PaginationStrategy | None
    strategy: StrategyName | PaginationStrategy | None
    max_pages: int | None
    max_items: int | None
    start_offset: int | None


class BodyKwargs(RequestKwargs, total=False):
    """Request arguments plus a body: ``json``, ``data``, ``files`` or ``content``.

    Examples:
        >>> from typing_extensions import Unpack
        >>> from buttress import Client, Response
        >>> def create(client: Client, **kwargs: Unpack[BodyKwargs]) -> Response:
        ...     return client.post("/users", **kwargs)
    """

    content: httpx._types.RequestContent | None
    data: httpx._types.RequestData | None
    files: httpx._types.RequestFiles | None
    json: Any


# The call signatures: with a model (or a {status: model} mapping) the call returns it,
# without one the Response; an object checkers cannot read as a model gives Any.
if TYPE_CHECKING:

    class Request(Protocol):
        @overload
        def __call__(
            self,
            method: str,
            url: URL,
            *,
            response_model: type[T] | ModelsByStatus[T],
            **kwargs: Unpack[BodyKwargs],
        ) -> T: ...
        @overload
        def __call__(
            self,
            method: str,
            url: URL,
            *,
            response_model: None = None,
            **kwargs: Unpack[BodyKwargs],
        ) -> Response: ...
        @overload
        def __call__(
            self, method: str, url: URL, *, response_model: object, **kwargs: Unpack[BodyKwargs]
        ) -> Any: ...

    class AsyncRequest(Protocol):
        @overload
        def __call__(
            self,
            method: str,
            url: URL,
            *,
            response_model: type[T] | ModelsByStatus[T],
            **kwargs: Unpack[BodyKwargs],
        ) -> Awaitable[T]: ...
        @overload
        def __call__(
            self,
            method: str,
            url: URL,
            *,
            response_model: None = None,
            **kwargs: Unpack[BodyKwargs],
        ) -> Awaitable[Response]: ...
        @overload
        def __call__(
            self, method: str, url: URL, *, response_model: object, **kwargs: Unpack[BodyKwargs]
        ) -> Awaitable[Any]: ...

    class Call(Protocol):  # get, head, options, delete
        @overload
        def __call__(
            self,
            url: URL,
            *,
            response_model: type[T] | ModelsByStatus[T],
            **kwargs: Unpack[RequestKwargs],
        ) -> T: ...
        @overload
        def __call__(
            self, url: URL, *, response_model: None = None, **kwargs: Unpack[RequestKwargs]
        ) -> Response: ...
        @overload
        def __call__(
            self, url: URL, *, response_model: object, **kwargs: Unpack[RequestKwargs]
        ) -> Any: ...

    class BodyCall(Protocol):  # post, put, patch
        @overload
        def __call__(
            self,
            url: URL,
            *,
            response_model: type[T] | ModelsByStatus[T],
            **kwargs: Unpack[BodyKwargs],
        ) -> T: ...
        @overload
        def __call__(
            self, url: URL, *, response_model: None = None, **kwargs: Unpack[BodyKwargs]
        ) -> Response: ...
        @overload
        def __call__(
            self, url: URL, *, response_model: object, **kwargs: Unpack[BodyKwargs]
        ) -> Any: ...

    class AsyncCall(Protocol):
        @overload
        def __call__(
            self,
            url: URL,
            *,
            response_model: type[T] | ModelsByStatus[T],
            **kwargs: Unpack[RequestKwargs],
        ) -> Awaitable[T]: ...
        @overload
        def __call__(
            self, url: URL, *, response_model: None = None, **kwargs: Unpack[RequestKwargs]
        ) -> Awaitable[Response]: ...
        @overload
        def __call__(
            self, url: URL, *, response_model: object, **kwargs: Unpack[RequestKwargs]
        ) -> Awaitable[Any]: ...

    class AsyncBodyCall(Protocol):
        @overload
        def __call__(
            self,
            url: URL,
            *,
            response_model: type[T] | ModelsByStatus[T],
            **kwargs: Unpack[BodyKwargs],
        ) -> Awaitable[T]: ...
        @overload
        def __call__(
            self, url: URL, *, response_model: None = None, **kwargs: Unpack[BodyKwargs]
        ) -> Awaitable[Response]: ...
        @overload
        def __call__(
            self, url: URL, *, response_model: object, **kwargs: Unpack[BodyKwargs]
        ) -> Awaitable[Any]: ...
