"""Helpers for testing code that uses buttress (and for buttress's own tests).

- :class:`DemoServer` / :class:`DemoAPI`: a local REST API with pagination,
  flaky, slow, rate-limited and cacheable endpoints, SSE and downloads.
- :class:`OAuthProvider`: the demo API's OAuth 2.0 authorization server
  (:class:`OAuthClient` registers a client with it).
- :class:`FakeClock`: time that moves only when something sleeps.
- :class:`FaultServer` / :class:`Fault`: an HTTP server on real sockets that
  resets, truncates, stalls and garbles its answers on cue.
- :class:`MockAPI`: respx routes with JSON, error and ``Retry-After`` answers.
- :class:`ScriptedTransport`: a transport playing faults and answers from a script
  (:class:`Reply`, :class:`Fail`, :class:`Reset`, :class:`Truncate`, :class:`Delay`).
- :class:`Cassette`: record real exchanges once (secrets redacted), replay them after.

The pytest plugin (:mod:`buttress.testing.pytest_plugin`, loaded automatically
when buttress is installed) offers them as ``buttress_*`` fixtures.
"""

from .. import _lazy
from .cassette import Cassette, CassetteTransport
from .clock import FakeClock
from .demo import DemoAPI, create_app
from .faults import Fault, FaultServer, ReceivedRequest
from .mock import MockAPI, error_response, json_response
from .oauth import OAuthClient, OAuthProvider
from .scripted import Delay, Fail, Reply, Reset, ScriptedTransport, Step, Truncate
from .server import DemoServer

__all__ = [
    "Cassette",
    "CassetteTransport",
    "Delay",
    "DemoAPI",
    "DemoServer",
    "Fail",
    "FakeClock",
    "Fault",
    "FaultServer",
    "MockAPI",
    "OAuthClient",
    "OAuthProvider",
    "ReceivedRequest",
    "Reply",
    "Reset",
    "ScriptedTransport",
    "Step",
    "Truncate",
    "create_app",
    "error_response",
    "json_response",
]

# Shown as this package's own: ``buttress.testing.X``, not the module that defines it.
_lazy.adopt(__name__, __all__)
