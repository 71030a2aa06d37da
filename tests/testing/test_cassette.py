"""Cassettes: record against the demo API, replay without it, secrets never on disk."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

import buttress
from buttress.testing import Cassette, CassetteTransport, DemoServer, MockAPI

from .kinds import KINDS, client_of

pytestmark = pytest.mark.anyio

SECRETS = ["s3cret-token", "k3y-value", "c00kie", "hunter2", "sess-id-42"]


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_record_then_replay_without_the_network(
    kind: str, demo: DemoServer, tmp_path: Path
) -> None:
    path = tmp_path / "users.json"
    recorder = client_of(kind, Cassette(path, mode="record").transport(), demo.url)
    recorded = (await recorder.get("/users/2")).json()
    created = await recorder.request("POST", "/users", json={"name": "Jane"})
    await recorder.aclose()
    assert created.status_code == 201

    hits = sum(demo.app.hits.values())
    replay = Cassette(path, mode="replay")
    player = client_of(kind, replay.transport(), demo.url)
    assert (await player.get("/users/2")).json() == recorded
    replayed = await player.request("POST", "/users", json={"name": "Jane"})
    assert (replayed.status_code, replayed.json()) == (201, created.json())
    await player.aclose()
    assert sum(demo.app.hits.values()) == hits  # nothing reached the server
    assert len(replay) == 2


async def test_a_request_not_in_the_cassette_fails_clearly(kind: str, tmp_path: Path) -> None:
    api = MockAPI()
    api.json("GET", "/users/1", {"id": 1})
    path = tmp_path / "c.json"
    recorder = client_of(kind, Cassette(path, mode="record").transport(api.transport), api.base_url)
    await recorder.get("/users/1")
    await recorder.aclose()

    player = client_of(kind, Cassette(path, mode="replay").transport(api.transport), api.base_url)
    with pytest.raises(
        buttress.ConfigurationError, match=r"GET .*/users/2 is not in cassette"
    ) as e:
        await player.get("/users/2")
    assert "GET https://api.example.test/users/1" in str(e.value)  # what it does hold
    await player.aclose()
    assert len(api.calls) == 1  # the unknown request never went out


def test_secrets_are_redacted_on_disk(demo: DemoServer, tmp_path: Path) -> None:
    path = tmp_path / "secret.json"
    cassette = Cassette(path, mode="record", redact_headers=["X-Session"], redact_params=["sid"])
    with buttress.Client(
        base_url=demo.url,
        transport=cassette.transport(),
        auth=("bearer", "s3cret-token"),
        headers={"X-API-Key": "k3y-value", "Cookie": "id=c00kie", "X-Session": "sess-id-42"},
    ) as client:
        client.get("/users/1", params={"api_key": "k3y-value", "sid": "sess-id-42"})

    text = path.read_text()
    for secret in SECRETS:
        assert secret not in text
    headers = json.loads(text)["interactions"][0]["request"]["headers"]
    for name in ["authorization", "x-api-key", "cookie", "x-session"]:
        assert headers[name] == "[REDACTED]"
    url = json.loads(text)["interactions"][0]["request"]["url"]
    assert url.endswith("/users/1?api_key=[REDACTED]&sid=[REDACTED]")


def test_response_cookies_and_passwords_in_urls_are_redacted(tmp_path: Path) -> None:
    api = MockAPI("https://user:hunter2@api.example.test")
    api.route(
        "GET",
        "/login",
        httpx.Response(
            200, headers=[("Set-Cookie", "a=c00kie"), ("Set-Cookie", "b=2")], json={"ok": 1}
        ),
    )
    path = tmp_path / "login.json"
    with httpx.Client(transport=Cassette(path, mode="record").transport(api.transport)) as client:
        assert client.get("https://user:hunter2@api.example.test/login").json() == {"ok": 1}
    text = path.read_text()
    assert "hunter2" not in text
    assert "c00kie" not in text
    headers = json.loads(text)["interactions"][0]["response"]["headers"]
    assert headers.count(["set-cookie", "[REDACTED]"]) == 2  # both kept, both hidden

    with httpx.Client(transport=Cassette(path, mode="replay").transport()) as client:
        replayed = client.get("https://user:hunter2@api.example.test/login")
        assert "set-cookie" not in replayed.headers  # not replayed as a cookie named [REDACTED]
        assert not client.cookies


def test_secrets_in_response_headers_and_camel_case_fields_stay_off_disk(tmp_path: Path) -> None:
    presigned = (
        "https://bucket.s3.test/report.csv?X-Amz-Credential=AKIA-cred-1"
        "&X-Amz-Security-Token=sts-token-2&X-Amz-Signature=sig-value-3&v=2"
    )
    api = MockAPI()
    api.route("GET", "/download", httpx.Response(302, headers={"Location": presigned}))
    api.json("GET", "/me", {"accessToken": "camel-token-4", "secretKey": "camel-key-5"})
    path = tmp_path / "signed.json"
    with httpx.Client(
        base_url=api.base_url, transport=Cassette(path, mode="record").transport(api.transport)
    ) as client:
        client.get("/download")
        client.get("/me")
    text = path.read_text()
    for secret in ["AKIA-cred-1", "sts-token-2", "sig-value-3", "camel-token-4", "camel-key-5"]:
        assert secret not in text
    with httpx.Client(
        base_url=api.base_url, transport=Cassette(path, mode="replay").transport()
    ) as client:
        location = client.get("/download").headers["location"]
    assert location.startswith("https://bucket.s3.test/report.csv?X-Amz-Credential=[REDACTED]")
    assert location.endswith("&v=2")


def test_a_body_sharing_words_with_a_secret_replays_unchanged(tmp_path: Path) -> None:
    # The request's key begins and ends like words of the body: only the key is a secret.
    api = MockAPI()
    api.json("GET", "/build", {"build": "2024", "note": "cdef is the answer"})
    path = tmp_path / "build.json"
    key = {"api_key": "2024-abcdef"}
    with httpx.Client(
        base_url=api.base_url, transport=Cassette(path, mode="record").transport(api.transport)
    ) as client:
        recorded = client.get("/build", params=key).json()
    with httpx.Client(
        base_url=api.base_url, transport=Cassette(path, mode="replay").transport()
    ) as client:
        assert client.get("/build", params=key).json() == recorded
    assert recorded == {"build": "2024", "note": "cdef is the answer"}
    assert "2024-abcdef" not in path.read_text()


async def test_a_different_secret_still_matches(kind: str, tmp_path: Path) -> None:
    api = MockAPI()
    api.json("GET", "/me", {"me": True})
    path = tmp_path / "me.json"
    recorder = client_of(kind, Cassette(path, mode="record").transport(api.transport), api.base_url)
    await recorder.get("/me", params={"token": "local-token"})
    await recorder.aclose()
    player = client_of(kind, Cassette(path, mode="replay").transport(), api.base_url)
    assert (await player.get("/me", params={"token": "ci-token"})).json() == {"me": True}
    await player.aclose()


def test_identical_requests_replay_in_order_and_the_last_repeats(
    demo: DemoServer, tmp_path: Path
) -> None:
    path = tmp_path / "flaky.json"
    url = f"{demo.url}/flaky?key=cassette-order&failures=2"
    with httpx.Client(transport=Cassette(path, mode="record").transport()) as client:
        assert [client.get(url).status_code for _ in range(3)] == [503, 503, 200]
    with httpx.Client(transport=Cassette(path, mode="replay").transport()) as client:
        assert [client.get(url).status_code for _ in range(4)] == [503, 503, 200, 200]


def test_once_records_when_missing_and_replays_when_present(tmp_path: Path) -> None:
    api = MockAPI()
    api.json("GET", "/a", {"a": 1})
    path = tmp_path / "deep" / "once.json"
    first = Cassette(path)
    assert first.mode == "record"
    with httpx.Client(transport=first.transport(api.transport)) as client:
        client.get(f"{api.base_url}/a")
    second = Cassette(path)
    assert second.mode == "replay"
    with httpx.Client(transport=second.transport(api.transport)) as client:
        assert client.get(f"{api.base_url}/a").json() == {"a": 1}
    assert len(api.calls) == 1


def test_append_replays_known_and_records_new(tmp_path: Path) -> None:
    api = MockAPI()
    api.json("GET", "/a", {"a": 1})
    api.json("GET", "/b", {"b": 2})
    path = tmp_path / "append.json"
    with httpx.Client(transport=Cassette(path, mode="record").transport(api.transport)) as client:
        client.get(f"{api.base_url}/a")
    with httpx.Client(transport=Cassette(path, mode="append").transport(api.transport)) as client:
        client.get(f"{api.base_url}/a")
        client.get(f"{api.base_url}/b")
    assert [call.request.url.path for call in api.calls] == ["/a", "/b"]
    assert len(Cassette(path, mode="replay")) == 2


def test_match_body(tmp_path: Path) -> None:
    api = MockAPI()
    api.route("POST", "/search", {"hits": 1}, {"hits": 2})
    path = tmp_path / "body.json"
    cassette = Cassette(path, mode="record", match_body=True)
    with httpx.Client(transport=cassette.transport(api.transport)) as client:
        client.post(f"{api.base_url}/search", json={"q": "a"})
        client.post(f"{api.base_url}/search", json={"q": "b"})
    replay = Cassette(path, mode="replay", match_body=True)
    with httpx.Client(transport=replay.transport()) as client:
        assert client.post(f"{api.base_url}/search", json={"q": "b"}).json() == {"hits": 2}
        assert client.post(f"{api.base_url}/search", json={"q": "a"}).json() == {"hits": 1}
        with pytest.raises(buttress.ConfigurationError):
            client.post(f"{api.base_url}/search", json={"q": "c"})


def test_binary_and_compressed_bodies(demo: DemoServer, tmp_path: Path) -> None:
    path = tmp_path / "bin.json"
    with httpx.Client(transport=Cassette(path, mode="record").transport()) as client:
        original = client.get(f"{demo.url}/download", params={"size": 300}).content
    stored = json.loads(path.read_text())["interactions"][0]["response"]
    assert "base64" in stored["body"]
    assert all(name != "content-length" for name, _ in stored["headers"])
    with httpx.Client(transport=Cassette(path, mode="replay").transport()) as client:
        replayed = client.get(f"{demo.url}/download", params={"size": 300})
    assert replayed.content == original
    assert replayed.headers["content-length"] == "300"


def test_recording_keeps_network_errors(tmp_path: Path) -> None:
    api = MockAPI()
    api.route("GET", "/down", httpx.ConnectError)
    path = tmp_path / "err.json"
    transport = Cassette(path, mode="record").transport(api.transport)
    with httpx.Client(transport=transport) as client, pytest.raises(httpx.ConnectError):
        client.get(f"{api.base_url}/down")
    assert json.loads(path.read_text())["interactions"] == []  # the failure is not recorded


def test_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(buttress.ConfigurationError, match="does not exist"):
        Cassette(tmp_path / "missing.json", mode="replay")
    with pytest.raises(buttress.ConfigurationError, match="unknown cassette mode"):
        Cassette(tmp_path / "x.json", mode="sometimes")  # type: ignore[arg-type]
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(buttress.ConfigurationError, match="cannot read cassette"):
        Cassette(broken)


async def test_inner_transport_must_match_the_client(tmp_path: Path) -> None:
    cassette = Cassette(tmp_path / "x.json", mode="record")
    transport = CassetteTransport(cassette, httpx.AsyncHTTPTransport())
    with httpx.Client(transport=transport) as c, pytest.raises(Exception, match="async-only"):
        c.get("http://127.0.0.1:1/")
    async with httpx.AsyncClient(transport=cassette.transport(httpx.HTTPTransport())) as c:
        with pytest.raises(buttress.ConfigurationError, match="sync-only"):
            await c.get("http://127.0.0.1:1/")
    assert repr(cassette.transport()) == "CassetteTransport(mode='record', interactions=0)"


async def test_bodies_are_written_scrubbed_and_still_match(
    kind: str, demo: DemoServer, tmp_path: Path
) -> None:
    path = tmp_path / "login.json"
    auth = buttress.APIKeyAuth("shop-k3y-77", header="X-Shop")  # a name buttress cannot guess
    form = {"user": "ada", "password": "hunter2-pw"}
    cassette = Cassette(path, mode="record", match_body=True)
    recorder = client_of(kind, cassette.transport(), demo.url, auth=auth)
    recorded = (await recorder.request("POST", "/echo", data=form)).json()
    await recorder.aclose()
    text = path.read_text()
    assert "shop-k3y-77" not in text  # the header, and the server's echo of it
    assert "hunter2-pw" not in text  # the form field, and its echo
    assert recorded["headers"]["x-shop"] == "[REDACTED]"  # recording gives what replay will

    player = client_of(kind, Cassette(path, mode="replay", match_body=True).transport(), auth=auth)
    replayed = await player.request("POST", f"{demo.url}/echo", data=form)
    assert replayed.json() == recorded
    await player.aclose()
