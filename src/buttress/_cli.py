"""The ``buttress`` command line (also ``python -m buttress``).

::

    buttress get URL [--retry N] [--cache DIR] [--rate-limit N/S] [--timeout S]
                     [-H 'Name: value' ...] [--json BODY]      (and post, put, patch, delete, head)
    buttress cache stats|clear --dir DIR
    buttress cache invalidate PATTERN --dir DIR
    buttress demo [--port N]

A request goes through the same layers as ``buttress.Client``. The response's
status line, headers and body (JSON indented) go to stdout; what the layers
did (each retry and why, a rate-limit wait, a cache hit) goes to stderr, one
line per event. A failure is one line on stderr, credentials hidden, and an
exit status: 0 success, 1 failure, 2 bad usage, 4 a 4xx answer, 5 a 5xx
answer, 130 interrupted. Standard library only (argparse).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import httpx

from ._client import Client
from ._clock import SYSTEM_CLOCK, Clock
from ._exceptions import ConfigurationError, HTTPError, RateLimitError
from ._redact import Redactor
from ._version import __version__
from .cache import Cache, CacheConfig, DiskCache
from .middleware import MetricsMiddleware
from .policies.ratelimit import RateLimitConfig
from .policies.retry import RetryConfig
from .transports.cache import CACHE_EXTENSION, CacheResult

__all__ = ["main"]

_METHODS = ("get", "post", "put", "patch", "delete", "head")
_STOP = (signal.SIGINT, signal.SIGTERM)
_BROKEN_PIPE = 141  # what a shell reports for a program that SIGPIPE (13) ended: 128 + 13
_REQUEST_LOGS = ("buttress.request", "buttress.attempt", "buttress.middleware")
"""Loggers of the request outcome, which the command prints itself."""


# --- arguments --------------------------------------------------------------------------------


def _header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    if not colon or not name.strip() or any(c.isspace() for c in name.strip()):
        # The value may be a credential: never repeat it.
        raise argparse.ArgumentTypeError("expected 'Name: value'")
    if not text.isascii():  # what httpx sends in a header, as RFC 9110 5.5 advises
        raise argparse.ArgumentTypeError("a header's name and value must be ASCII")
    return name.strip(), value.strip()


def _rate(text: str) -> tuple[int, float]:
    count, slash, seconds = text.partition("/")
    try:
        parsed = int(count), float(seconds)
    except ValueError:
        parsed = (0, 0.0)
    if not slash or parsed[0] <= 0 or not parsed[1] > 0:
        raise argparse.ArgumentTypeError(
            f"expected N/S (N requests every S seconds, e.g. 10/1), got {text!r}"
        )
    return parsed


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as error:  # the body may hold secrets: say where, not what
        raise argparse.ArgumentTypeError(f"not valid JSON: {error}") from None


def _non_negative(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number of retries, got {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {text!r}")
    return seconds


# A request's other options: the flag, how its value is read, its placeholder, its help.
_REQUEST_OPTIONS: tuple[tuple[str, Callable[[str], Any], str, str], ...] = (
    ("--json", _json, "BODY", "a JSON request body"),
    (
        "--retry",
        _non_negative,
        "N",
        "resend up to N times after a transient failure (0: never; default: 2)",
    ),
    ("--cache", Path, "DIR", "answer from (and store in) a disk cache"),
    ("--rate-limit", _rate, "N/S", "send at most N requests every S seconds (retries included)"),
    ("--timeout", _seconds, "S", "seconds to wait for each phase"),
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="buttress",
        description="HTTP requests through buttress's layers, its disk cache, its demo API.",
        epilog="Exit status: 0 success, 1 failure, 2 bad usage, 4 a 4xx answer, 5 a 5xx answer.",
    )
    parser.add_argument("--version", action="version", version=f"buttress {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_request_commands(commands)
    _add_cache_command(commands)

    demo = commands.add_parser("demo", help="serve the bundled demo API until interrupted")
    demo.set_defaults(run=_demo)
    demo.add_argument("--port", type=int, default=0, help="the port on 127.0.0.1 (default: any)")
    return parser


def _add_request_commands(commands: Any) -> None:
    """``buttress get URL`` and the other methods, with the layers' options."""
    for method in _METHODS:
        request = commands.add_parser(
            method, help=f"send a {method.upper()} request and print the response"
        )
        request.set_defaults(run=_request, method=method.upper())
        request.add_argument(
            "url", metavar="URL", help="the URL (a path will do when BUTTRESS_BASE_URL is set)"
        )
        request.add_argument(
            "-H",
            "--header",
            dest="headers",
            action="append",
            type=_header,
            default=[],
            metavar="'NAME: VALUE'",
            help="a request header (repeatable)",
        )
        for flag, read, metavar, help_text in _REQUEST_OPTIONS:
            request.add_argument(flag, type=read, metavar=metavar, help=help_text)


def _add_cache_command(commands: Any) -> None:
    """``buttress cache stats|clear|invalidate``, on a disk cache's directory."""
    cache = commands.add_parser("cache", help="inspect or empty a disk cache")
    cache.set_defaults(run=_cache)
    actions = cache.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (
        ("stats", "count its entries"),
        ("clear", "remove every entry"),
        ("invalidate", "remove the entries whose URL path matches a glob"),
    ):
        command = actions.add_parser(action, help=text)
        if action == "invalidate":
            command.add_argument("pattern", metavar="PATTERN", help="'/users/*' or a full URL")
        command.add_argument(
            "--dir", type=Path, required=True, metavar="DIR", help="the cache directory"
        )


# --- what the layers did ----------------------------------------------------------------------


def _say(topic: str, text: str) -> None:
    print(f"{topic}: {text}", file=sys.stderr, flush=True)


class _LayerLog(logging.Handler):
    """The layers' warnings (a retry and why, a server's pause, a breaker opening)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith(_REQUEST_LOGS)

    def emit(self, record: logging.LogRecord) -> None:
        _say(record.name.removeprefix("buttress."), record.getMessage())


class _Events:
    """A :class:`~buttress.MetricsCollector` that tells of rate-limit waits as they end."""

    def request_finished(self, **facts: Any) -> None:
        """The response itself is printed on stdout."""

    def cache_result(self, *, host: str, hit: bool) -> None:
        """Told from the response, which knows the entry's age: see :func:`_tell_cache`."""

    def breaker_state_changed(self, host: str, old: str, new: str) -> None:
        """Not configured from the command line."""

    def rate_limit_waited(self, *, host: str, seconds: float) -> None:
        _say("ratelimit", f"waited {seconds:.2f}s for a slot to send to {host}")


def _tell_cache(response: httpx.Response) -> None:
    result = response.extensions.get(CACHE_EXTENSION)
    if not isinstance(result, CacheResult):
        return
    if result.revalidated:
        _say("cache", "revalidated: the server confirmed the stored response (304)")
    elif result.from_cache:
        stale = ", stale" if result.stale else ""
        _say("cache", f"hit, {result.age or 0:.0f}s old{stale}: nothing sent")
    else:
        _say("cache", "miss, stored" if result.stored else "miss, not stored")


# --- commands ---------------------------------------------------------------------------------


def _client(args: argparse.Namespace, clock: Clock) -> Client:
    options: dict[str, Any] = {"middleware": [MetricsMiddleware(_Events())], "clock": clock}
    if args.headers:
        options["headers"] = args.headers
    if args.timeout is not None:
        options["timeout"] = args.timeout
    if args.retry is not None:
        options["retry"] = RetryConfig(max_attempts=args.retry + 1) if args.retry else False
    if args.rate_limit is not None:
        count, seconds = args.rate_limit
        options["rate_limit"] = RateLimitConfig(max_requests=count, time_window=seconds)
    if args.cache is not None:
        options["cache"] = CacheConfig(backend=DiskCache(args.cache))
    return Client(**options)


def _show(response: httpx.Response) -> None:
    _print(f"{response.http_version} {response.status_code} {response.reason_phrase}".rstrip())
    for name, value in response.headers.multi_items():
        _print(f"{name}: {value}")
    body = _pretty(response)
    if body:
        _print("")
        _print(body)


# Control characters other than tab and newline: a server's bytes must not drive the
# terminal (ESC starts a sequence that may retitle or clear it; C1's CSI alone does too).
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_TEXT_TYPES = re.compile(
    r"^(text/|[^;]*[/+](json|xml)\b|[^;]*javascript|[^;]*x-www-form-urlencoded)"
)


def _print(text: str) -> None:
    """Print ``text`` to stdout as the terminal can take it: controls escaped, never raising
    for a character the stream's encoding lacks."""
    text = text.replace("\r\n", "\n")
    text = _CONTROLS.sub(lambda found: ascii(found.group())[1:-1], text)
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    print(text.encode(encoding, "backslashreplace").decode(encoding))


def _pretty(response: httpx.Response) -> str:
    content = response.content
    if not content:
        return ""
    content_type = response.headers.get("content-type", "").strip().lower()
    if "json" in content_type:
        try:
            return json.dumps(json.loads(content), indent=2, ensure_ascii=False)
        except ValueError:
            pass  # shown as it came
    textual = not content_type or _TEXT_TYPES.match(content_type)
    if not textual or b"\0" in content:
        return f"[{len(content):,} bytes of binary data not shown]"
    return response.text


def _request(args: argparse.Namespace, clock: Clock) -> int:
    layers = _LayerLog()
    log = logging.getLogger("buttress")
    log.addHandler(layers)
    try:
        with _client(args, clock) as client:
            try:
                response = client.request(args.method, args.url, json=args.json)
            except HTTPError as error:
                if _answered(error):
                    _show(error.response)
                    _tell_cache(error.response)
                raise
            _show(response)
            _tell_cache(response)
    finally:
        log.removeHandler(layers)
    return 0


def _cache(args: argparse.Namespace, clock: Clock) -> int:
    folder: Path = args.dir
    if not (folder / "salt").is_file():  # never empty a directory some other program owns
        raise ConfigurationError(f"{str(folder)!r} is not a buttress disk cache")
    cache = Cache(DiskCache(folder))
    if args.action == "stats":
        on_disk = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
        print(f"directory: {folder}")
        print(f"entries: {cache.stats().size}")
        print(f"on disk: {on_disk:,} bytes")
    elif args.action == "clear":
        entries = cache.stats().size
        cache.clear()
        print(f"removed {entries} entries")
    else:
        print(f"removed {cache.invalidate_pattern(args.pattern)} entries")
    return 0


def _demo(args: argparse.Namespace, clock: Clock) -> int:
    try:
        from .testing import DemoServer
    except ImportError as error:
        raise ConfigurationError(
            f"the demo API needs the testing extra ({error}): pip install 'buttress[testing]'"
        ) from None
    stopped = threading.Event()
    # Our own handlers: a shell that starts a job in the background makes it ignore SIGINT.
    previous = {number: signal.signal(number, lambda *_: stopped.set()) for number in _STOP}
    try:
        with DemoServer(port=args.port) as server:
            print(f"demo API on {server.url} (Ctrl-C to stop)", flush=True)
            while not stopped.wait(0.5):  # a timeout, so Windows too looks at Ctrl-C
                pass
            print("stopped", file=sys.stderr)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return 0


# --- errors -----------------------------------------------------------------------------------


def _redactor(args: argparse.Namespace) -> Redactor:
    """The secrets this command line holds (credential headers, a URL's password)."""
    try:
        request = httpx.Request("GET", args.url, headers=args.headers)
    except (AttributeError, httpx.InvalidURL, ValueError):
        return Redactor(values=[value for _, value in getattr(args, "headers", [])])
    return Redactor(values=Redactor().secrets_of(request))


def _answered(error: HTTPError) -> bool:
    """Whether the server answered (the client's own rate limit answers with a made-up 429)."""
    return not (isinstance(error, RateLimitError) and error.limited_by_client)


def _stop_writing_to(stream: TextIO) -> None:
    """Point ``stream`` at the null device: flushing it at exit would fail again."""
    with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
        os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())


def _status(error: Exception) -> int:
    if isinstance(error, HTTPError) and _answered(error):
        return 4 if error.status_code < 500 else 5
    return 1


def main(argv: Sequence[str] | None = None, *, clock: Clock = SYSTEM_CLOCK) -> int:
    """Run the command line with ``argv`` (``sys.argv[1:]`` by default); returns the exit status.

    ``clock`` times the layers' waits (tests pass a
    :class:`~buttress.testing.FakeClock`).

    Examples:
        >>> from buttress.testing import DemoServer
        >>> with DemoServer() as server:
        ...     status = main(["get", f"{server.url}/users/1"])  # doctest: +ELLIPSIS
        HTTP/1.1 200 OK
        ...
          "name": "Ada Lovelace",
        ...
        >>> status
        0
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, --version, or a usage error already printed
        return int(done.code or 0)
    run: Callable[[argparse.Namespace, Clock], int] = args.run
    try:
        return run(args, clock)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader left (`| head`): stop quietly, as a killed cat would
        _stop_writing_to(sys.stdout)
        return _BROKEN_PIPE
    except Exception as error:
        message = " ".join(_redactor(args).scrub(str(error) or type(error).__name__).split())
        print(f"buttress: error: {message}", file=sys.stderr)
        return _status(error)
