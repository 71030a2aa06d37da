"""Serve an ASGI app on a free 127.0.0.1 port in a background thread."""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Any

from .._exceptions import ConfigurationError
from ._lifecycle import Serving
from .demo import DemoAPI

__all__ = ["DemoServer"]


class DemoServer(Serving):
    """Run an ASGI app (the demo API by default) with uvicorn on 127.0.0.1.

    Needs the ``testing`` extra (``pip install 'buttress[testing]'``).

    Examples:
        >>> import httpx
        >>> with DemoServer() as server:
        ...     httpx.get(server.url + "/users/1").status_code
        200
    """

    def __init__(self, app: Any = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = DemoAPI() if app is None else app
        self.host = host
        self._port = port
        self._thread: threading.Thread | None = None
        self._server: Any = None

    @property
    def port(self) -> int:
        """The port the server listens on (known once started)."""
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{self.host}:{self._port}"

    def start(self) -> DemoServer:
        """Start serving; returns once the server accepts connections."""
        try:
            import uvicorn
        except ImportError:  # pragma: no cover - the test environment has it
            raise ConfigurationError(
                "DemoServer needs uvicorn: pip install 'buttress[testing]'"
            ) from None
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit this. Without it, uvicorn's separate writes of the head
        # and the body meet Nagle's algorithm and the client's delayed ACK: ~40 ms a request.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((self.host, self._port))
        # Listen at once: until a socket listens, another one may bind its port with
        # SO_REUSEADDR too and listen first, and uvicorn's thread may start much later.
        sock.listen(2048)
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level="critical",
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=1,
            # Longer than any client's keep-alive expiry (httpx: 5 s), so a client never
            # reuses a connection the server is closing at that moment; as production
            # servers are configured behind load balancers.
            timeout_keep_alive=30,
        )
        self._server = uvicorn.Server(config)
        started = threading.Event()

        def serve() -> None:
            with contextlib.closing(sock):
                self._server.run(sockets=[sock])
            started.set()

        self._thread = threading.Thread(target=serve, name=f"demo-server-{self._port}", daemon=True)
        self._thread.start()
        while not self._server.started and self._thread.is_alive():
            started.wait(0.01)
        if not self._server.started:
            raise ConfigurationError(f"the demo server could not start on {self.url}")
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread to end."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._thread = None
