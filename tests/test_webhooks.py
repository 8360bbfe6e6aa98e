from __future__ import annotations

import time

import pytest

from postroom.webhooks import UnsafeCallbackUrl, check_callback_url, sign, verify

BODY = b'{"event":"document.delivered"}'


def test_signature_round_trip() -> None:
    header = sign("secret", BODY)
    assert header.startswith("t=")
    assert verify("secret", BODY, header)


def test_tampered_body_wrong_secret_and_garbage_fail() -> None:
    header = sign("secret", BODY)
    assert not verify("secret", BODY + b" ", header)
    assert not verify("other", BODY, header)
    assert not verify("secret", BODY, "v1=abc")
    assert not verify("secret", BODY, "nonsense")


def test_stale_signatures_are_refused() -> None:
    old = sign("secret", BODY, timestamp=int(time.time()) - 3600)
    assert not verify("secret", BODY, old)
    assert verify("secret", BODY, old, tolerance=7200)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "https://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "file:///etc/passwd",
        "gopher://example.org/",
    ],
)
def test_callbacks_into_private_networks_are_refused(url: str) -> None:
    with pytest.raises(UnsafeCallbackUrl):
        check_callback_url(url, allow_private=False)


def test_private_callbacks_can_be_allowed_for_on_premises_receivers() -> None:
    check_callback_url("http://127.0.0.1:8080/hook", allow_private=True)
    with pytest.raises(UnsafeCallbackUrl):
        check_callback_url("file:///etc/passwd", allow_private=True)
