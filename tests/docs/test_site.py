"""The documentation site, checked as a reader sees it: built, served, opened in Chromium.

The site is built with ``mkdocs build --strict``, served on 127.0.0.1, and the index
and every page with a Mermaid diagram are opened in headless Chromium (Debian's
``chromium``, which CI installs). Each diagram must have rendered to an SVG, the page
must log no console error (a missing script, a diagram that failed to parse, an
exception), and every link on it to the site itself must lead to a page that exists
and, with a ``#fragment``, to an element with that id.

Chromium is driven through the DevTools protocol over ``--remote-debugging-pipe``
(JSON messages separated by NUL bytes on file descriptors 3 and 4), so neither a
debugging port nor a websocket client is needed. Nothing here reaches the internet:
Mermaid is the pinned copy under docs/javascripts/.
"""

from __future__ import annotations

import functools
import html.parser
import importlib
import json
import os
import re
import selectors
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import metadata
from pathlib import Path
from typing import Any

import pytest

from tests.servers import in_thread

ROOT = Path(__file__).parents[2]
DOCS = ROOT / "docs"
DIAGRAM = re.compile(r"^```mermaid$", re.M)
EXTRA_ROW = re.compile(r"^\| `([\w-]+)` \|", re.M)
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-pipe",
]
# Generous: one bound for each wait on the browser (a page load, its diagrams), on a
# busy 2-core machine; a healthy page takes well under a second. Only a broken page
# (a diagram that never renders) ever reaches it.
BROWSER_TIMEOUT = 60.0
DIAGRAM_TIMEOUT = BROWSER_TIMEOUT / 2  # ends inside the page, within BROWSER_TIMEOUT

# The one request the site makes to another host: with ``repo_url`` set, the theme asks
# GitHub's API for the repository's stars and latest release to show next to its link.
# Offline (as in CI) that fails and the link simply shows without them; anything else
# from outside (a font, a script from a CDN) is an error.
REPOSITORY_FACTS = "https://api.github.com/repos/buttress-http/buttress"

# Resolves once ``count`` diagrams are drawn, or after ``seconds`` when they never are.
WAIT_FOR_DIAGRAMS = """(count, seconds) => new Promise(resolve => {
    const end = Date.now() + 1000 * seconds;
    const check = () =>
        document.querySelectorAll("div.mermaid").length >= count || Date.now() > end
            ? resolve(true)
            : setTimeout(check, 20);
    check();
})"""

# What the reference pages must cover: every name these modules export.
PUBLIC_MODULES = [
    "buttress",
    "buttress.auth",
    "buttress.cache",
    "buttress.graphql",
    "buttress.middleware",
    "buttress.observability",
    "buttress.openapi",
    "buttress.pagination",
    "buttress.stores",
    "buttress.streaming",
    "buttress.testing",
    "buttress.transports",
    "buttress.websocket",
]
NOT_OURS = {"Request", "ServerSentEvent", "__version__"}  # httpx's and httpx-sse's


def diagram_pages() -> dict[str, int]:
    """The site path of every docs page with a diagram, and how many it has."""
    pages = {}
    for page in sorted(DOCS.rglob("*.md")):
        count = len(DIAGRAM.findall(page.read_text()))
        if count:
            pages[site_path(page)] = count
    return pages


def site_path(page: Path) -> str:
    """``docs/retries.md`` -> ``retries/``, as mkdocs lays out its directory URLs."""
    relative = page.relative_to(DOCS).with_suffix("")
    if relative.name == "index":
        relative = relative.parent
    return "" if relative == Path() else f"{relative.as_posix()}/"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("site")
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(directory)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, f"mkdocs build --strict failed:\n{built.stderr}"
    return directory


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    """The built site on 127.0.0.1; yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    with (
        ThreadingHTTPServer(("127.0.0.1", 0), handler) as server,
        in_thread(server.serve_forever, server.shutdown),
    ):
        yield f"http://127.0.0.1:{server.server_address[1]}/"


class Chromium:
    """Headless Chromium, one tab, driven over the DevTools protocol on a pipe."""

    def __init__(self, executable: str, profile: Path) -> None:
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()
        # The browser reads commands on fd 3 and writes replies and events on fd 4. The
        # pipes come in as stdin and stdout, and the shell moves them there (it only
        # names fds 0-9, and these sources cannot collide with the targets).
        redirect = 'exec "$0" "$@" 3<&0 4>&1 0</dev/null 1>&2'
        self.log = profile / "chromium.log"
        profile /= "profile"
        with self.log.open("wb") as log:
            self._process = subprocess.Popen(
                [
                    "/bin/sh",
                    "-c",
                    redirect,
                    executable,
                    *CHROMIUM_FLAGS,
                    f"--user-data-dir={profile}",
                ],
                stdin=to_browser_read,
                stdout=from_browser_write,
                stderr=log,
            )
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._from_browser, selectors.EVENT_READ)
        self._buffer = b""
        self._next_id = 0
        self._session: str | None = None
        self.events: list[dict[str, Any]] = []
        try:
            target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            attached = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})
        except BaseException:
            self.close()
            raise
        self._session = attached["sessionId"]

    def close(self) -> None:
        self._selector.close()
        os.close(self._to_browser)
        os.close(self._from_browser)
        self._process.terminate()
        try:
            self._process.wait(timeout=BROWSER_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send a command (to the tab once attached) and return its result."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if self._session is not None:
            message["sessionId"] = self._session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        reply = self._receive(lambda m: m.get("id") == self._next_id, method)
        assert "error" not in reply, f"{method} failed: {reply['error']}"
        result: dict[str, Any] = reply["result"]
        return result

    def wait_for_event(self, method: str) -> dict[str, Any]:
        return self._receive(lambda m: m.get("method") == method, method)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the tab, awaited if it is a promise."""
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
        )
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def _receive(self, wanted: Any, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + BROWSER_TIMEOUT
        while True:
            separator = self._buffer.find(b"\0")
            if separator >= 0:
                message = json.loads(self._buffer[:separator])
                self._buffer = self._buffer[separator + 1 :]
                if "method" in message:
                    self.events.append(message)
                if wanted(message):
                    return dict(message)
                continue
            left = deadline - time.monotonic()
            silent = (
                f"Chromium gave no answer to {what} in {BROWSER_TIMEOUT:.0f}s (log: {self.log})"
            )
            assert left > 0, silent
            assert self._selector.select(left), silent
            chunk = os.read(self._from_browser, 1 << 16)
            assert chunk, f"Chromium closed its pipe during {what} (log: {self.log})"
            self._buffer += chunk


def chromium_executable() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail(
            "Chromium is needed to check the docs site and was not found: "
            "install Debian's package (apt-get install -y chromium), as .ci/run does."
        )
    return found


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    chromium = Chromium(chromium_executable(), tmp_path_factory.mktemp("chromium-profile"))
    try:
        chromium.send("Page.enable")
        chromium.send("Runtime.enable")
        chromium.send("Log.enable")
        yield chromium
    finally:
        chromium.close()


def console_errors(events: list[dict[str, Any]]) -> list[str]:
    """The errors a page logged: console.error, uncaught exceptions, failed loads."""
    errors = []
    for event in events:
        params = event.get("params", {})
        if event["method"] == "Runtime.consoleAPICalled" and params["type"] in {"error", "assert"}:
            errors.append(" ".join(str(arg.get("value", arg)) for arg in params["args"]))
        elif event["method"] == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            errors.append(details.get("exception", {}).get("description", details["text"]))
        elif event["method"] == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            if not entry.get("url", "").startswith(REPOSITORY_FACTS):
                errors.append(f"{entry['text']} {entry.get('url', '')}".strip())
    return errors


def attributes(node: dict[str, Any]) -> dict[str, str]:
    """A protocol DOM node's attributes (sent as one flat name, value, ... list)."""
    flat = node.get("attributes", [])
    return dict(zip(flat[::2], flat[1::2], strict=True))


def rendered_diagrams(browser: Chromium) -> list[str]:
    """What each Mermaid host element holds: ``svg`` once rendered.

    mkdocs-material draws each diagram into a *closed* shadow root, out of reach of
    the page's scripts; the protocol's DOM walk (``pierce``) still sees it.
    """
    document = browser.send("DOM.getDocument", {"depth": -1, "pierce": True})["root"]
    found = []
    stack = [document]
    while stack:
        node = stack.pop()
        if (
            node.get("localName") == "div"
            and "mermaid" in attributes(node).get("class", "").split()
        ):
            shadow = node.get("shadowRoots", [{}])[0].get("children", [])
            svgs = [child for child in shadow if child.get("localName") == "svg"]
            if not svgs:
                found.append("nothing")
            elif attributes(svgs[0]).get("aria-roledescription") == "error":
                found.append("error")  # Mermaid's picture of a diagram it could not parse
            else:
                found.append("svg")
        stack.extend(node.get("children", []))
        stack.extend(node.get("shadowRoots", []))
    return found


class _Anchors(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in {"id", "name"} and value:
                self.ids.add(value)


@functools.cache
def fetch_ids(url: str) -> set[str] | None:
    """The ids on the page at ``url``, or ``None`` when it is not there."""
    try:
        with urllib.request.urlopen(url, timeout=BROWSER_TIMEOUT) as response:
            body = response.read().decode()
    except urllib.error.HTTPError as error:
        error.close()
        return None
    parser = _Anchors()
    parser.feed(body)
    return parser.ids


def broken_links(hrefs: list[str], base: str) -> list[str]:
    broken = []
    for href in hrefs:
        if not href.startswith(base):
            continue  # another site: not ours to check, and not reachable from CI
        page, _, fragment = href.partition("#")
        ids = fetch_ids(page)
        if ids is None:
            broken.append(f"{href} (no such page)")
        elif fragment and urllib.parse.unquote(fragment) not in ids:
            broken.append(f"{href} (no element with that id)")
    return broken


def test_the_docs_have_diagrams_where_the_pictures_help() -> None:
    assert set(diagram_pages()) >= {"transports/", "circuit-breaker/", "caching/", "retries/"}


@pytest.mark.parametrize("path", ["", *diagram_pages()], ids=lambda p: p or "index")
def test_page_renders_its_diagrams_without_errors_or_broken_links(
    browser: Chromium, served: str, path: str
) -> None:
    expected = diagram_pages().get(path, 0)
    browser.events.clear()
    browser.send("Page.navigate", {"url": served + path})
    browser.wait_for_event("Page.loadEventFired")
    # mkdocs-material swaps each <pre class="mermaid"> for a <div class="mermaid">
    # once its SVG is drawn: wait in the page (no sleeping here) until all are, or
    # until DIAGRAM_TIMEOUT says one never will, and then report what is there.
    browser.evaluate(f"({WAIT_FOR_DIAGRAMS})({expected}, {DIAGRAM_TIMEOUT})")

    errors = console_errors(browser.events)
    assert rendered_diagrams(browser) == ["svg"] * expected, f"console errors: {errors}"
    hrefs = browser.evaluate("[...document.querySelectorAll('a[href]')].map(a => a.href)")
    assert hrefs, "the page has no links at all: not the page we meant to open"
    assert broken_links(hrefs, served) == []
    assert errors == []


def resolve(dotted: str) -> object | None:
    """The object a reference anchor names (``buttress.cache.CacheConfig``), if any."""
    parts = dotted.split(".")
    if parts[0] != "buttress":
        return None  # a heading's own anchor, such as "clients"
    for split in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for name in parts[split:]:
            found = getattr(found, name, None)
        return found
    return None


def test_the_reference_documents_every_public_name(site: Path) -> None:
    anchors: set[str] = set()
    for page in (site / "reference").rglob("index.html"):
        parser = _Anchors()
        parser.feed(page.read_text())
        anchors |= parser.ids
    # A re-exported name is documented once, under the module that defines it:
    # compare the objects the anchors name, not the spellings.
    documented = {id(found) for found in map(resolve, anchors) if found is not None}
    missing = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        missing += [
            f"{module_name}.{name}"
            for name in module.__all__
            if name not in NOT_OURS and id(getattr(module, name)) not in documented
        ]
    assert missing == []


@pytest.mark.parametrize("page", [ROOT / "README.md", DOCS / "index.md"], ids=lambda p: p.name)
def test_the_install_section_lists_every_extra(page: Path) -> None:
    install = page.read_text().partition("## Install\n")[2].partition("\n## ")[0]
    extras = set(metadata("buttress").get_all("Provides-Extra") or [])
    assert extras, "the package declares no extras: is buttress installed?"
    assert set(EXTRA_ROW.findall(install)) == extras
