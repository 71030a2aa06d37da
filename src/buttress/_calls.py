"""The clients' request methods: what they accept, what they return, and the verbs.

``Client`` and ``AsyncClient`` share one implementation of ``get``, ``post``, ...
(:class:`Verbs`: each calls the client's ``request``, which ``AsyncClient``
awaits); the call signatures at the bottom tell checkers what each returns:
the :class:`~buttress.Response`, or the model ``response_model`` names,
awaited (a coroutine, as ``async def`` gives) or not.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Collection, Coroutine, Mapping, Sequence
from typing import (
    TYPE_CHECKING,
    Any,
    Generic,
    ParamSpec,
    Protocol,
    TypeAlias,
    TypeVar,
    cast,
    overload,
)

import httpx

if TYPE_CHECKING:
    from httpx._client import UseClientDefault
    from typing_extensions import TypedDict, Unpack

    from ._config import TimeoutTypes
    from ._network import ProxyOption
    from ._response import Response
    from .auth import AuthTypes
    from .pagination import PaginationStrategy, StrategyName
    from .policies.priority import Priority
    from .policies.retry import RetryConfig
    from .transports.middleware import MiddlewareTypes
else:
    from typing import TypedDict

__all__ = [
    "AsyncBodyCall",
    "AsyncCall",
    "AsyncRequest",
    "AsyncVerbs",
    "BodyCall",
    "BodyKwargs",
    "Call",
    "ModelsByStatus",
    "PaginateKwargs",
    "Request",
    "RequestKwargs",
    "Verbs",
    "awaiting",
    "called_as",
    "coroutine_method",
]

T = TypeVar("T")
R = TypeVar("R")
C = TypeVar("C")
S = TypeVar("S")
P = ParamSpec("P")
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
    idempotent: bool | None
    priority: Priority | None


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


CallT = TypeVar("CallT", covariant=True)
BodyCallT = TypeVar("BodyCallT", covariant=True)


class Verbs(Generic[CallT, BodyCallT]):
    """``get``, ``head``, ``options``, ``delete``, ``post``, ``put`` and ``patch``, written once.

    Each sends through the client's ``request``; on an ``AsyncClient`` that
    returns an awaitable, so ``await client.get(...)``. A client names what its
    verbs return: ``Verbs[Call, BodyCall]``, or ``AsyncVerbs[AsyncCall, AsyncBodyCall]``.
    """

    if TYPE_CHECKING:  # the client's ``request``, and its verbs as checkers see them
        request: Callable[..., Any]
        get: CallT
        head: CallT
        options: CallT
        delete: CallT
        post: BodyCallT
        put: BodyCallT
        patch: BodyCallT
    else:  # one method for every client: checkers read the signatures above instead

        def get(self, url: httpx.URL | str, *, response_model: Any = None, **kwargs: Any) -> Any:
            """Send a GET request (see :meth:`request`); await it on an ``AsyncClient``.

            Examples:
                >>> from buttress import Client
                >>> from buttress.testing import DemoServer
                >>> with DemoServer() as server, Client(base_url=server.url) as client:
                ...     client.get("/users", params={"limit": 2}).json()["total"]
                100
            """
            return self.request("GET", url, response_model=response_model, **kwargs)

        def head(self, url: httpx.URL | str, *, response_model: Any = None, **kwargs: Any) -> Any:
            """Send a HEAD request (see :meth:`request`).

            Examples:
                >>> def size(client: Client) -> int:
                ...     return int(client.head("/download").headers["content-length"])
            """
            return self.request("HEAD", url, response_model=response_model, **kwargs)

        def options(
            self, url: httpx.URL | str, *, response_model: Any = None, **kwargs: Any
        ) -> Any:
            """Send an OPTIONS request (see :meth:`request`).

            Examples:
                >>> async def allowed(client: AsyncClient) -> str:
                ...     return (await client.options("/users")).headers.get("allow", "")
            """
            return self.request("OPTIONS", url, response_model=response_model, **kwargs)

        def delete(self, url: httpx.URL | str, *, response_model: Any = None, **kwargs: Any) -> Any:
            """Send a DELETE request (see :meth:`request`).

            Examples:
                >>> def remove(client: Client, user_id: int) -> None:
                ...     client.delete(f"/users/{user_id}")
            """
            return self.request("DELETE", url, response_model=response_model, **kwargs)

        def post(self, url: httpx.URL | str, *, response_model: Any = None, **kwargs: Any) -> Any:
            """Send a POST request; ``json=`` accepts dicts, lists and Pydantic models.

            Examples:
                >>> def create(client: Client) -> int:
                ...     created = client.post("/users", json={"name": "Jane", "email": "j@x.io"})
                ...     return int(created.json()["id"])
            """
            return self.request("POST", url, response_model=response_model, **kwargs)

        def put(self, url: httpx.URL | str, *, response_model: Any = None, **kwargs: Any) -> Any:
            """Send a PUT request (see :meth:`post`).

            Examples:
                >>> async def replace(client: AsyncClient) -> None:
                ...     await client.put("/users/1", json={"name": "Ada", "email": "ada@x.io"})
            """
            return self.request("PUT", url, response_model=response_model, **kwargs)

        def patch(self, url: httpx.URL | str, *, response_model: Any = None, **kwargs: Any) -> Any:
            """Send a PATCH request (see :meth:`post`).

            Examples:
                >>> def rename(client: Client) -> None:
                ...     client.patch("/users/1", json={"name": "Ada K."})
            """
            return self.request("PATCH", url, response_model=response_model, **kwargs)


def coroutine_method(method: Callable[P, R]) -> Callable[P, Coroutine[Any, Any, R]]:
    """``method``, which returns an awaitable on an ``AsyncClient``, as a coroutine function.

    ``inspect.iscoroutinefunction`` then holds for it, as for httpx's async
    methods, so decorators that wrap sync and async callables differently
    (retrying, tracing) see an async method.
    """

    async def call(*args: P.args, **kwargs: P.kwargs) -> R:
        # typed as the sync method's result; on an AsyncClient it is awaitable
        return await cast("Awaitable[R]", method(*args, **kwargs))

    return functools.wraps(method)(call)


def called_as(signature: Callable[..., S]) -> Callable[[Callable[..., Any]], S]:
    """A method decorator: checkers call the method as ``signature`` (a callable class) says.

    One signature, its overloads included, serves ``Client``'s and ``AsyncClient``'s
    method alike. At run time the method is returned as it is, so ``help()`` and
    :func:`inspect.signature` show its own parameters.
    """
    return lambda method: cast("S", method)


def awaiting(source: type, *names: str) -> Callable[[type[C]], type[C]]:
    """A class decorator: ``source``'s methods called ``names``, as coroutine functions.

    Each is the same method (see :func:`coroutine_method`), written once for both
    kinds of client or session; checkers learn what it returns from the class's
    own declarations.
    """

    def decorate(cls: type[C]) -> type[C]:
        for name in names:
            setattr(cls, name, coroutine_method(getattr(source, name)))
        return cls

    return decorate


@awaiting(Verbs, "get", "head", "options", "delete", "post", "put", "patch")
class AsyncVerbs(Verbs[CallT, BodyCallT]):
    """The verbs of :class:`Verbs` as coroutine functions, for ``AsyncClient``."""


# The call signatures: with a model (or a {status: model} mapping) the call returns it,
# without one the Response; an object checkers cannot read as a model gives Any. ``self``
# is ``Any`` so that the awaited signatures can be these, each returning a coroutine.
if TYPE_CHECKING:

    class Request(Protocol):  # request
        @overload
        def __call__(
            self: Any,
            method: str,
            url: URL,
            *,
            response_model: type[T] | ModelsByStatus[T],
            **kwargs: Unpack[BodyKwargs],
        ) -> T: ...
        @overload
        def __call__(
            self: Any,
            method: str,
            url: URL,
            *,
            response_model: None = None,
            **kwargs: Unpack[BodyKwargs],
        ) -> Response: ...
        @overload
        def __call__(
            self: Any,
            method: str,
            url: URL,
            *,
            response_model: object,
            **kwargs: Unpack[BodyKwargs],
        ) -> Any: ...

    class Call(Protocol):  # get, head, options, delete
        @overload
        def __call__(
            self: Any,
            url: URL,
            *,
            response_model: type[T] | ModelsByStatus[T],
            **kwargs: Unpack[RequestKwargs],
        ) -> T: ...
        @overload
        def __call__(
            self: Any, url: URL, *, response_model: None = None, **kwargs: Unpack[RequestKwargs]
        ) -> Response: ...
        @overload
        def __call__(
            self: Any, url: URL, *, response_model: object, **kwargs: Unpack[RequestKwargs]
        ) -> Any: ...

    class BodyCall(Protocol):  # post, put, patch
        @overload
        def __call__(
            self: Any,
            url: URL,
            *,
            response_model: type[T] | ModelsByStatus[T],
            **kwargs: Unpack[BodyKwargs],
        ) -> T: ...
        @overload
        def __call__(
            self: Any, url: URL, *, response_model: None = None, **kwargs: Unpack[BodyKwargs]
        ) -> Response: ...
        @overload
        def __call__(
            self: Any, url: URL, *, response_model: object, **kwargs: Unpack[BodyKwargs]
        ) -> Any: ...

    class AsyncRequest:
        __call__ = coroutine_method(Request.__call__)

    class AsyncCall:
        __call__ = coroutine_method(Call.__call__)

    class AsyncBodyCall:
        __call__ = coroutine_method(BodyCall.__call__)
else:  # at run time they only name the clients' bases and what ``called_as`` is given
    Request = Call = BodyCall = AsyncRequest = AsyncCall = AsyncBodyCall = object
