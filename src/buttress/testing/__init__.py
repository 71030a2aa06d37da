"""Helpers for testing code that uses buttress (and for buttress's own tests).

- :class:`DemoServer` / :class:`DemoAPI`: a local REST API with pagination,
  flaky, slow, rate-limited and cacheable endpoints, SSE and downloads.
- :class:`FakeClock`: time that moves only when something sleeps.
- :class:`FaultServer` / :class:`Fault`: an HTTP server on real sockets that
  resets, truncates, stalls and garbles its answers on cue.
"""

from .clock import FakeClock
from .demo import DemoAPI, create_app
from .faults import Fault, FaultServer, ReceivedRequest
from .server import DemoServer

__all__ = [
    "DemoAPI",
    "DemoServer",
    "FakeClock",
    "Fault",
    "FaultServer",
    "ReceivedRequest",
    "create_app",
]
