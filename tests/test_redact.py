"""Secrets are hidden in URLs and headers."""

from __future__ import annotations

import httpx

from buttress._redact import REDACTED, Redactor, redact_headers, redact_url


def test_redact_url_hides_password_and_secret_params() -> None:
    text = redact_url("https://u:pw@api.test/p?access_token=abc&page=2&my_client_secret=x")
    assert "pw" not in text.replace("api", "")
    assert "abc" not in text
    assert "=x" not in text
    assert "page=2" in text
    assert text.count(REDACTED) == 3


def test_redact_url_leaves_plain_urls_alone() -> None:
    assert redact_url(httpx.URL("https://api.test/p?page=2")) == "https://api.test/p?page=2"


def test_extra_params_and_headers() -> None:
    assert "zzz" not in redact_url("https://api.test/?custom=zzz", extra_params=["custom"])
    headers = redact_headers(httpx.Headers({"X-Custom": "1", "Cookie": "c"}), extra=["x-custom"])
    assert headers == {"x-custom": REDACTED, "cookie": REDACTED}


def test_redactor_url_hides_what_redact_url_hides() -> None:
    redactor = Redactor(params=["custom"])
    plain = httpx.URL("https://api.test/users/1#top")
    assert redactor.url(plain) == "https://api.test/users/1#top"
    secret = httpx.URL("https://u:pw@api.test/p?custom=zzz&page=2")
    assert redactor.url(secret) == f"https://u:{REDACTED}@api.test/p?custom={REDACTED}&page=2"
    patterned = Redactor(patterns=[r"users/\d+"])
    assert patterned.url(plain) == f"https://api.test/{REDACTED}#top"
