"""``import buttress`` stays light: modules load when what they provide is used.

Each check runs in a fresh interpreter and looks at ``sys.modules`` (never at
the clock): ``import buttress`` loads the exception tree only, a client's import
loads no settings and no optional layer, a default client loads only its layers.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import types

import pytest

import buttress
import buttress.stores
import buttress.transports

OPTIONAL = [
    "aiohttp",
    "httpx_aiohttp",
    "h2",
    "httpx_socks",
    "socksio",
    "orjson",
    "opentelemetry",
    "uvicorn",
]

# Loaded only by what uses them: settings, the pydantic model machinery, cache storage
# (hishel), tenacity strategies, server-sent events, and every layer a client is not given.
HEAVY = ["pydantic_settings", "pydantic.main", "hishel", "tenacity", "httpx_sse"]
NOT_IN_A_DEFAULT_CLIENT = [
    "buttress.auth",
    "buttress.cache",
    "buttress.middleware",
    "buttress.pagination",
    "buttress.policies.breaker",
    "buttress.policies.ratelimit",
    "buttress.streaming",
    "buttress.testing",
    "buttress.transports.breaker",
    "buttress.transports.cache",
    "buttress.transports.middleware",
    "buttress.transports.ratelimit",
    "hishel",
    "tenacity",
    "httpx_sse",
]


def run(code: str, **environ: str) -> str:
    """Run ``code`` in a fresh interpreter without ``BUTTRESS_*`` variables but ``environ``."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("BUTTRESS_")}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, check=True, text=True, env=env | environ
    ).stdout


def loaded_after(code: str, **environ: str) -> set[str]:
    """The modules a fresh interpreter has imported after running ``code``."""
    out = run(f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))", **environ)
    return set(json.loads(out.splitlines()[-1]))


# A request to the demo API's echo route through a default client, in a
# fresh interpreter that has imported nothing else; ``before`` runs once the client is
# built (it may set EXPORTED), and SENT is the headers the request carried.
FIRST_REQUEST = {
    "sync": (
        "import buttress\n"
        "from buttress.testing import DemoServer\n"
        "with DemoServer() as server, buttress.Client(base_url=server.url) as client:\n"
        "    {before}\n"
        "    SENT = client.get('/echo').json()['headers']\n"
    ),
    "async": (
        "import asyncio, buttress\n"
        "from buttress.testing import DemoServer\n"
        "async def main(url):\n"
        "    global EXPORTED\n"
        "    async with buttress.AsyncClient(base_url=url) as client:\n"
        "        {before}\n"
        "        return (await client.get('/echo')).json()['headers']\n"
        "with DemoServer() as server:\n"
        "    SENT = asyncio.run(main(server.url))\n"
    ),
}


def test_optional_dependencies_are_imported_lazily() -> None:
    # httpx before 0.28 imports httpcore, and with it h2 when installed: not ours to defer.
    ours = loaded_after("import buttress") - loaded_after("import httpx")
    assert ours.isdisjoint(OPTIONAL)


def test_import_buttress_loads_only_the_exception_tree() -> None:
    loaded = loaded_after("import buttress")
    ours = {name for name in loaded if name.startswith("buttress")}
    assert ours == {
        "buttress",
        "buttress._exceptions",
        "buttress._extensions",
        "buttress._lazy",
        "buttress._redact",
        "buttress._version",
    }
    assert loaded.isdisjoint(HEAVY)


def test_import_buttress_loads_no_pydantic() -> None:
    # The exception tree redacts secrets with plain strings: pydantic (whose validators
    # would load most of its model machinery) comes with the first configuration model.
    pydantic = {name for name in loaded_after("import buttress") if name.startswith("pydantic")}
    assert pydantic == set()


def test_client_import_loads_no_settings_and_no_optional_layer() -> None:
    loaded = loaded_after("from buttress import AsyncClient, Client")
    assert "pydantic_settings" not in loaded
    assert "buttress._settings" not in loaded
    assert "buttress.transports.retry" not in loaded  # built with the first client's stack
    assert loaded.isdisjoint(NOT_IN_A_DEFAULT_CLIENT)


def test_a_default_client_loads_its_own_layers_only() -> None:
    code = "import buttress\nclient = buttress.Client()\nclient.with_options(timeout=3).close()"
    loaded = loaded_after(code)
    assert {"buttress.transports.retry", "buttress.transports.logging"} < loaded
    assert loaded.isdisjoint(NOT_IN_A_DEFAULT_CLIENT)
    # No BUTTRESS_* variable is set: nothing to parse, so no pydantic-settings (about 6 MiB).
    assert "pydantic_settings" not in loaded


# A server of the standard library's, answering 200 to every GET, started in the fresh
# interpreter before the client under test (the demo server would load asyncio itself).
PLAIN_SERVER = (
    "import http.server, threading\n"
    "class Answer(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        self.send_response(200)\n"
    "        self.send_header('Content-Length', '2')\n"
    "        self.end_headers()\n"
    "        self.wfile.write(b'ok')\n"
    "    def log_message(self, *args):\n"
    "        pass\n"
    "server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Answer)\n"
    "threading.Thread(target=server.serve_forever, daemon=True).start()\n"
    "URL = f'http://127.0.0.1:{server.server_address[1]}/'\n"
)

# Loaded by what only some programs do: asyncio by an async client (closing a body),
# the rate-limit and Retry-After parsers by a response that asks for them (an error
# status, a retry, ``response.rate_limit``), pydantic's serializers by a schema built.
NOT_IN_A_SYNC_FIRST_REQUEST = {
    "asyncio",
    "buttress.policies.headers",
    "pydantic.functional_serializers",
}


def test_a_sync_client_and_its_first_request_load_no_more_than_they_need() -> None:
    # Against httpx doing the same: a release of a dependency that loads one of these
    # itself is not ours to defer.
    ours = loaded_after(f"{PLAIN_SERVER}import buttress\nbuttress.Client().get(URL)")
    theirs = loaded_after(f"{PLAIN_SERVER}import httpx, pydantic\nhttpx.Client().get(URL)")
    assert (ours - theirs).isdisjoint(NOT_IN_A_SYNC_FIRST_REQUEST)


def test_what_a_first_request_defers_loads_when_it_is_used() -> None:
    code = (
        f"{PLAIN_SERVER}import buttress\n"
        "assert buttress.Client().get(URL).rate_limit is None\n"
        "assert '<function' in buttress.RetryConfig(wait=print).model_dump_json()\n"
    )
    assert {"buttress.policies.headers", "pydantic.functional_serializers"} < loaded_after(code)


def test_a_client_without_a_store_loads_no_store_machinery() -> None:
    # A limiter and a breaker with no store only compare against the stores' UNAVAILABLE
    # marker: the Redis client, its scripts and anyio's thread pool stay out, and the
    # suggestions of difflib wait for a misspelt argument.
    code = (
        "import buttress\n"
        "from buttress.testing import DemoServer\n"
        "limit = buttress.RateLimitConfig(max_requests=1000, time_window=1.0)\n"
        "breaker = buttress.CircuitBreakerConfig()\n"
        "with DemoServer() as server, buttress.Client(\n"
        "    base_url=server.url, rate_limit=limit, circuit_breaker=breaker\n"
        ") as client:\n"
        "    client.get('/echo').raise_for_status()\n"
    )
    loaded = loaded_after(code)
    assert "buttress.transports.ratelimit" in loaded
    stores = {name for name in loaded if name.startswith("buttress.stores.")}
    assert stores == {"buttress.stores.health"}
    # Against the same program without the two layers: some releases of our dependencies
    # load difflib or anyio's thread pool themselves; the layers must add neither.
    plain = code.replace("rate_limit=limit, circuit_breaker=breaker", "")
    added = loaded - loaded_after(plain)
    assert added.isdisjoint({"anyio.to_thread", "difflib"})
    assert "redis" not in loaded


@pytest.mark.parametrize("variable", ["BUTTRESS_MAX_REDIRECTS", "buttress_max_redirects"])
def test_a_buttress_variable_loads_the_settings_and_is_read(variable: str) -> None:
    code = "import buttress\nprint(buttress.Client()._config.value('max_redirects'))"
    loaded = loaded_after(code, **{variable: "4"})
    assert "pydantic_settings" in loaded
    assert run(code, **{variable: "4"}).splitlines()[0] == "4"


def test_a_layer_loads_when_a_client_uses_it() -> None:
    code = "import buttress\nbuttress.Client(cache=buttress.CacheConfig()).close()"
    assert {"buttress.transports.cache", "hishel"} < loaded_after(code)


@pytest.mark.parametrize(
    "module", [buttress, buttress.stores, buttress.transports], ids=lambda m: m.__name__
)
def test_every_export_resolves_and_is_listed(module: types.ModuleType) -> None:
    code = (
        f"import {module.__name__} as m\n"
        "missing = [n for n in m.__all__ if getattr(m, n, None) is None]\n"
        "assert not missing, missing\n"
        "assert set(m.__all__) <= set(dir(m)), set(m.__all__) - set(dir(m))\n"
        f"from {module.__name__} import *"
    )
    run(code)


def test_a_resolved_name_is_the_object_its_module_defines() -> None:
    from buttress._client import Client
    from buttress._settings import ButtressSettings
    from buttress.transports.retry import RetryTransport

    assert buttress.Client is Client
    assert buttress.ButtressSettings is ButtressSettings
    assert buttress.transports.RetryTransport is RetryTransport
    assert "Client" in vars(buttress)  # kept: the next lookup is a plain attribute


def test_transports_stack_stays_the_function_once_its_module_is_imported() -> None:
    module = importlib.import_module("buttress.transports.stack")
    assert buttress.transports.stack is module.stack


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Clinet'"):
        buttress.Clinet  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        buttress.transports.Nope  # type: ignore[attr-defined]  # noqa: B018


def test_public_subpackages_resolve_without_their_own_import() -> None:
    run("import buttress\nbuttress.auth.BearerAuth\nbuttress.transports.RetryTransport")


def test_an_export_shows_its_public_name_whatever_was_imported_first() -> None:
    # buttress.cache is imported on its own: its names the top level also exports still
    # show as buttress.X, the rest as buttress.cache.X.
    out = run(
        "import buttress.cache as cache\n"
        "print(cache.MemoryCache.__module__, cache.StatsRecorder.__module__)"
    )
    assert out.split() == ["buttress", "buttress.cache"]


def test_a_value_a_client_returns_shows_the_public_name_of_its_type() -> None:
    # Response is never named: importing the client brought its module in, which adopts it.
    out = run(
        "import httpx, buttress\n"
        "answer = httpx.MockTransport(lambda request: httpx.Response(200))\n"
        "with buttress.Client(transport=answer) as client:\n"
        "    print(type(client.get('http://api.test/')))"
    )
    assert out.strip() == "<class 'buttress.Response'>"


def test_a_module_another_imports_shows_public_names_once_it_has_run() -> None:
    # A default client imports the settings (a BUTTRESS_* variable is set) and its layers'
    # modules itself, and no public name is looked up after that: their exports show their
    # public names all the same.
    out = run(
        "import sys, buttress\n"
        "buttress.Client().close()\n"
        "print(sys.modules['buttress._settings'].ButtressSettings.__module__)\n"
        "print(sys.modules['buttress.transports.retry'].RetryTransport.__module__)",
        BUTTRESS_MAX_REDIRECTS="4",
    )
    assert out.split() == ["buttress", "buttress.transports"]


@pytest.mark.parametrize("kind", FIRST_REQUEST)
def test_a_first_request_imports_no_opentelemetry_until_the_application_uses_it(
    kind: str,
) -> None:
    # Installed but unused, OpenTelemetry could record no span, and its default
    # propagators would write the traceparent we write ourselves.
    code = FIRST_REQUEST[kind].format(before="pass")
    loaded = loaded_after(f"{code}assert SENT['traceparent'].startswith('00-')")
    assert not {name for name in loaded if name.startswith("opentelemetry")}


# The configuration models whose validator is built (each builds it when it first validates).
BUILT_MODELS = (
    "from buttress._client_config import ClientConfig\n"
    "from buttress._config import FrozenConfig\n"
    "models, found = [ClientConfig], [FrozenConfig]\n"
    "while found:\n"
    "    models += found\n"
    "    found = [sub for model in found for sub in model.__subclasses__()]\n"
    "print(json.dumps(sorted(m.__name__ for m in models if m.__pydantic_complete__)))\n"
)


@pytest.mark.parametrize("kind", FIRST_REQUEST)
def test_a_default_client_and_its_first_request_build_no_model_validator(kind: str) -> None:
    # A default client holds shared default configurations and checks its options
    # itself: building pydantic validators was most of its cold start.
    code = FIRST_REQUEST[kind].format(before="pass")
    assert json.loads(run(f"import json\n{code}{BUILT_MODELS}").splitlines()[-1]) == []


def test_a_configuration_a_client_is_given_builds_its_own_validator_only() -> None:
    code = "import json, buttress\nbuttress.Client(retry=buttress.RetryConfig(max_attempts=2))\n"
    assert json.loads(run(code + BUILT_MODELS).splitlines()[-1]) == ["RetryConfig"]


SDK_CONFIGURED = (
    "from opentelemetry import trace; "
    "from opentelemetry.sdk.trace import TracerProvider; "
    "from opentelemetry.sdk.trace.export import SimpleSpanProcessor; "
    "from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter; "
    "EXPORTED = InMemorySpanExporter(); provider = TracerProvider(); "
    "provider.add_span_processor(SimpleSpanProcessor(EXPORTED)); "
    "trace.set_tracer_provider(provider)"
)


@pytest.mark.parametrize("kind", FIRST_REQUEST)
def test_an_sdk_configured_after_the_client_is_built_records_spans(kind: str) -> None:
    code = FIRST_REQUEST[kind].format(before=SDK_CONFIGURED)
    out = run(
        f"{code}spans = EXPORTED.get_finished_spans()\n"
        "client_span = next(span for span in spans if span.kind.name == 'CLIENT')\n"
        "print(sorted(span.kind.name for span in spans))\n"
        "print(SENT['traceparent'].split('-')[2] == format(client_span.context.span_id, '016x'))"
    )
    assert out.split("\n")[:2] == ["['CLIENT', 'INTERNAL']", "True"]


@pytest.mark.parametrize("kind", FIRST_REQUEST)
def test_propagators_configured_by_the_environment_write_the_trace_context(kind: str) -> None:
    # Nothing imports OpenTelemetry, but OTEL_PROPAGATORS tells its API what to write.
    code = FIRST_REQUEST[kind].format(before="pass")
    out = run(
        f"{code}print(sorted(name for name in SENT if 'b3' in name))", OTEL_PROPAGATORS="b3multi"
    )
    assert out.strip() == "['x-b3-sampled', 'x-b3-spanid', 'x-b3-traceid']"


def test_a_client_that_asks_for_spans_loads_opentelemetry_when_it_is_built() -> None:
    loaded = loaded_after(
        "import buttress\nbuttress.Client(tracing=buttress.TracingConfig(spans=True))"
    )
    assert "opentelemetry.trace" in loaded
