"""Signed webhooks: HMAC-SHA256 over ``<timestamp>.<body>``, sent as ``Postroom-Signature: t=…,v1=…``.

The receiver recomputes the HMAC with the shared secret, compares in constant time and
refuses timestamps outside its tolerance, which defeats replays of captured requests.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
import time
from urllib.parse import urlsplit

SIGNATURE_HEADER = "Postroom-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


class UnsafeCallbackUrl(ValueError):
    """A callback URL that points into a private network (server-side request forgery)."""


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The signature header value for ``body``."""
    stamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def verify(secret: str, body: bytes, header: str, tolerance: int = DEFAULT_TOLERANCE_SECONDS) -> bool:
    """Whether ``header`` is a valid, fresh signature of ``body``."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        stamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - stamp) > tolerance:
        return False
    expected = sign(secret, body, stamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def check_callback_url(url: str, *, allow_private: bool) -> None:
    """Refuse callback URLs whose host is, or resolves to, a loopback, private or link-local address."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeCallbackUrl("callback URLs must be http(s) URLs with a host")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError as error:
        raise UnsafeCallbackUrl("the callback host does not resolve") from error
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise UnsafeCallbackUrl(
                "callback URLs may not point into private, loopback or link-local networks"
            )
