"""A certificate the client refuses is not a transient failure: retrying gets the same one."""

from __future__ import annotations

import ssl

import httpx

from buttress.policies.outcomes import is_transient


def test_refused_certificate_is_not_transient() -> None:
    verify = ssl.SSLCertVerificationError("certificate verify failed")
    error = httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED]")
    error.__cause__ = verify
    assert not is_transient(error)


def test_other_connect_errors_stay_transient() -> None:
    error = httpx.ConnectError("refused")
    error.__cause__ = ConnectionRefusedError(111, "refused")
    assert is_transient(error)
