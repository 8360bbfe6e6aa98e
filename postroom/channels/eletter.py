"""The e-letter channel: hybrid mail through a provider's REST API (Pingen style).

The provider prints, envelopes and posts the print variant; postroom only uploads the PDF and
submits it. The protocol this adapter speaks (and :mod:`postroom.embedded.eletter_provider`
implements) is:

``POST /oauth/token``
    OAuth2 client credentials: form fields ``grant_type=client_credentials``, ``client_id``,
    ``client_secret``; answers ``{"access_token", "token_type": "Bearer", "expires_in"}``. The
    token is cached until shortly before it expires; an API call answered 401 fetches a new token
    and is repeated once.
``POST /v1/uploads`` (Bearer) ``{"sha256", "size"}``
    Opens a presigned upload: ``201 {"upload_id", "url", "expires_in"}``.
``PUT <url>`` (no Authorization: the URL carries its own signature) body ``application/pdf``
    Stores the PDF; the provider refuses a body whose SHA-256 differs from the announced one.
    An upload alone never becomes a letter; unused uploads expire.
``POST /v1/letters`` (Bearer, ``Idempotency-Key: <delivery id>``) ``{"upload_id", "reference",
"country", "address_position", "print_mode", "print_spectrum", "delivery_product"}``
    Creates the letter: ``201 {"letter_id", "reference", "status": "submitted", ...}``. The same key
    answers the letter it created before (200), whatever the upload id, so a retried submit never
    makes a second letter; the same key with another PDF is 422. 409 means a request with that key
    is still in progress.
``GET /v1/letters/{letter_id}`` (Bearer)
    The letter and its ``status``: ``submitted → accepted → printed → sent → delivered``, or
    ``undeliverable`` / ``rejected``.
Status webhooks
    ``POST`` to the hub's ``/v1/webhooks/eletter/<provider>`` with a JSON body ``{"event_id",
    "letter_id", "reference", "status", "occurred_at"}`` and the header ``Eletter-Signature:
    t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the webhook secret>`` (the format of
    :mod:`postroom.webhooks`). ``reference`` is the delivery id given at submit. Non-2xx answers
    are retried by the provider.

Replies: 429 and 503 are "busy" (:class:`ProviderBusy`, carrying ``Retry-After`` in seconds; until
then this channel refuses further sends locally instead of calling the provider again), 408,
other 5xx, timeouts and lost connections are transient (:class:`DeliveryDeferred`), other 4xx
permanent (:class:`DeliveryRejected`, so the fallback to print takes over). No message quotes a
reply body or the recipient: providers echo addresses.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, Final

import httpx

from postroom.channels.base import (
    ChannelUnavailable,
    DeliveryDeferred,
    DeliveryRejected,
    Handoff,
    HandoffReceipt,
)
from postroom.channels.preflight import PreflightLimits, preflight_handoff
from postroom.log import get_logger
from postroom.settings import Settings

log = get_logger(__name__)

NAME: Final = "eletter"
SIGNATURE_HEADER: Final = "Eletter-Signature"
"""The header of the provider's status webhooks: ``t=<unix time>,v1=<hex HMAC-SHA256>``."""

STATUS_RANK: Final[Mapping[str, int]] = {
    "submitted": 0,
    "accepted": 1,
    "printed": 2,
    "sent": 3,
    "delivered": 4,
    "undeliverable": 4,
    "rejected": 4,
}
"""Order of the provider's statuses; a report never moves a letter to a lower (or equal) rank."""
FAILURE_STATUSES: Final = frozenset({"undeliverable", "rejected"})
"""Statuses that fail a delivery the provider has not accepted yet."""

MAX_RETRY_AFTER_SECONDS: Final = 3600.0
TOKEN_MARGIN_SECONDS: Final = 30.0


class ProviderBusy(DeliveryDeferred):
    """The provider asked us to slow down (429) or is unavailable (503).

    ``retry_after`` is the provider's ``Retry-After`` in seconds (``None`` when it gave none);
    a job may wait at least that long before the next attempt.
    """

    code = "eletter_busy"

    def __init__(self, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class LetterRejected(DeliveryRejected):
    """The provider rejected the letter or could not deliver it before accepting it."""

    code = "eletter_rejected"


@dataclass(frozen=True, slots=True)
class LetterStatus:
    """A letter as the provider reports it."""

    letter_id: str
    reference: str | None
    status: str


def eletter_supports(country: str, settings: Settings) -> bool:
    """Whether the configured e-letter provider can post to ``country`` (ISO 3166-1 alpha-2).

    ``False`` when no provider is configured (``POSTROOM_ELETTER_URL`` unset).
    """
    if not settings.eletter_url:
        return False
    return country.upper() in {code.upper() for code in settings.eletter_countries}


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` (delta seconds or an HTTP date) in seconds, capped at an hour; ``None`` if absent
    or unreadable."""
    if not value:
        return None
    value = value.strip()
    seconds: float
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


@dataclass(slots=True)
class _Token:
    value: str
    refresh_at: float  # time.monotonic()


class ELetterChannel:
    """Uploads and submits the print variant to a hybrid-mail provider; confirmed by its status reports."""

    name = NAME
    variant = "print"

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        countries: Iterable[str] = ("DE", "AT", "CH"),
        limits: PreflightLimits | None = None,
        timeout: float = 30.0,
        duplex: bool = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self._client_secret = client_secret
        self.countries = frozenset(code.upper() for code in countries)
        self.limits = limits or PreflightLimits()
        self.timeout = timeout
        self.duplex = duplex
        self._lock = threading.Lock()
        self._token: _Token | None = None
        self._not_before = 0.0  # time.monotonic(): no call to the provider before then (Retry-After)
        self.tokens_fetched = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> ELetterChannel | None:
        """The channel configured by ``POSTROOM_ELETTER_*``; ``None`` without ``POSTROOM_ELETTER_URL``.

        Raises :class:`ValueError` when the URL is set without the client credentials.
        """
        if not settings.eletter_url:
            return None
        secret = settings.eletter_client_secret
        if not settings.eletter_client_id or secret is None:
            # Checked when the runtime builds its channels, so a misconfiguration stops the process.
            raise ValueError(
                "POSTROOM_ELETTER_URL needs POSTROOM_ELETTER_CLIENT_ID and POSTROOM_ELETTER_CLIENT_SECRET"
            )
        return cls(
            settings.eletter_url,
            settings.eletter_client_id,
            secret.get_secret_value(),
            countries=settings.eletter_countries,
            limits=PreflightLimits(settings.eletter_max_pages, settings.eletter_max_bytes),
            timeout=settings.eletter_timeout_seconds,
            duplex=settings.print_duplex,
        )

    # --- the Channel protocol ------------------------------------------------------------------

    async def send(self, handoff: Handoff) -> HandoffReceipt:
        """Preflight, upload and submit once per delivery id; the receipt awaits the provider's acceptance."""
        if handoff.recipient.country.upper() not in self.countries:
            raise DeliveryRejected("the recipient's country is not among POSTROOM_ELETTER_COUNTRIES")
        self._check_gate()
        await preflight_handoff(handoff, self.limits)
        async with self._client() as client:
            upload = await self._call(
                client, "POST", "/v1/uploads", json={"sha256": handoff.sha256, "size": len(handoff.pdf)}
            )
            upload_id, url = _field(upload, "upload_id"), _field(upload, "url")
            await self._put(client, url, handoff.pdf)
            body = {
                "upload_id": upload_id,
                "reference": str(handoff.delivery_id),
                "country": handoff.recipient.country.upper(),
                "address_position": "left",
                "print_mode": "duplex" if self.duplex else "simplex",
                "print_spectrum": "grayscale",
                "delivery_product": "standard",
            }
            letter = await self._call(
                client,
                "POST",
                "/v1/letters",
                json=body,
                headers={"Idempotency-Key": str(handoff.delivery_id)},
                operation="submit",
            )
        letter_id, status = _field(letter, "letter_id"), str(letter.get("status", "submitted"))
        if status in FAILURE_STATUSES:
            raise LetterRejected(f"the provider reports the letter as {status}")
        return HandoffReceipt(external_ref=letter_id, confirmed=False, event="submitted")

    async def check(self) -> None:
        """The provider answers its token endpoint with a token for our credentials."""
        try:
            async with self._client() as client:
                await self._access_token(client, renew=True)
        except DeliveryDeferred as error:
            raise ChannelUnavailable(f"e-letter provider unavailable ({error.detail})") from None

    # --- status ---------------------------------------------------------------------------------

    async def letter_status(self, letter_id: str) -> LetterStatus | None:
        """The provider's view of one letter; ``None`` when it does not know the letter."""
        return (await self.letter_statuses([letter_id])).get(letter_id)

    async def letter_statuses(
        self, letter_ids: Iterable[str], concurrency: int = 8
    ) -> dict[str, LetterStatus]:
        """The provider's status of each letter it knows, asking at most ``concurrency`` at a time.

        Stops early (returning what it has) when the provider says it is busy.
        """
        self._check_gate()
        found: dict[str, LetterStatus] = {}
        semaphore = asyncio.Semaphore(concurrency)
        busy = asyncio.Event()

        async def one(client: httpx.AsyncClient, letter_id: str) -> None:
            async with semaphore:
                if busy.is_set():
                    return
                try:
                    letter = await self._call(client, "GET", f"/v1/letters/{letter_id}", operation="status")
                except ProviderBusy:
                    busy.set()
                    return
                except (DeliveryDeferred, DeliveryRejected) as error:
                    # 404 (not the provider's letter), a timeout: this letter waits for the next round.
                    log.warning("e-letter status unavailable", letter_id=letter_id, error=error.code)
                    return
                found[letter_id] = LetterStatus(
                    letter_id=letter_id,
                    reference=str(letter["reference"]) if letter.get("reference") else None,
                    status=str(letter.get("status", "")),
                )

        async with self._client() as client:
            await asyncio.gather(*(one(client, letter_id) for letter_id in dict.fromkeys(letter_ids)))
        return found

    # --- HTTP -----------------------------------------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        # One client per operation: jobs run each send in its own event loop (asyncio.run).
        return httpx.AsyncClient(timeout=httpx.Timeout(self.timeout), follow_redirects=False)

    def _check_gate(self) -> None:
        with self._lock:
            wait = self._not_before - time.monotonic()
        if wait > 0:
            raise ProviderBusy(f"e-letter provider asked to wait {wait:.0f} s more", retry_after=wait)

    def _hold_off(self, seconds: float | None) -> None:
        if seconds:
            with self._lock:
                self._not_before = max(self._not_before, time.monotonic() + seconds)

    async def _access_token(self, client: httpx.AsyncClient, *, renew: bool = False) -> str:
        with self._lock:
            token = self._token
        if token is not None and not renew and time.monotonic() < token.refresh_at:
            return token.value
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self._client_secret,
        }
        response = await self._request(client, "POST", f"{self.base_url}/oauth/token", data=form)
        if response.status_code in (400, 401, 403):
            status = response.status_code
            raise DeliveryDeferred(f"e-letter provider refused the client credentials ({status})")
        self._raise_for(response, "token")
        payload = _json(response)
        value = _field(payload, "access_token")
        try:
            lifetime = float(payload.get("expires_in", 300))
        except (TypeError, ValueError):
            lifetime = 300.0
        margin = min(TOKEN_MARGIN_SECONDS, lifetime / 10)
        with self._lock:
            self._token = _Token(value, time.monotonic() + lifetime - margin)
            self.tokens_fetched += 1
        return value

    async def _call(
        self,
        client: httpx.AsyncClient,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        operation: str | None = None,
    ) -> dict[str, Any]:
        """An authenticated API call; a 401 renews the token and repeats the call once."""
        response: httpx.Response | None = None
        for attempt in range(2):
            token = await self._access_token(client, renew=attempt > 0)
            response = await self._request(
                client,
                method,
                f"{self.base_url}{path}",
                json=json,
                headers={**(headers or {}), "Authorization": f"Bearer {token}"},
            )
            if response.status_code != 401:
                break
        assert response is not None
        if response.status_code == 401:
            raise DeliveryDeferred("e-letter provider refused a freshly issued token (401)")
        self._raise_for(response, operation or path.split("/")[2])
        return _json(response)

    async def _put(self, client: httpx.AsyncClient, url: str, pdf: bytes) -> None:
        if not url.startswith(("https://", "http://")):
            raise DeliveryDeferred("e-letter provider gave an unusable upload URL")
        response = await self._request(
            client, "PUT", url, content=pdf, headers={"Content-Type": "application/pdf"}
        )
        self._raise_for(response, "upload")

    async def _request(
        self, client: httpx.AsyncClient, method: str, url: str, **kwargs: Any
    ) -> httpx.Response:
        try:
            return await client.request(method, url, **kwargs)
        except httpx.TimeoutException as error:
            raise DeliveryDeferred(f"e-letter provider timed out ({type(error).__name__})") from None
        except (httpx.HTTPError, OSError) as error:
            raise DeliveryDeferred(f"e-letter provider unreachable ({type(error).__name__})") from None

    def _raise_for(self, response: httpx.Response, operation: str) -> None:
        status = response.status_code
        if status < 300:
            return
        what = f"e-letter {operation} answered {status}"
        if status in (429, 503):
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            self._hold_off(retry_after)
            raise ProviderBusy(what, retry_after=retry_after)
        if status in (408, 409) or status >= 500:
            raise DeliveryDeferred(what)
        raise DeliveryRejected(what)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        raise DeliveryDeferred(f"e-letter provider answered {response.status_code} without JSON") from None
    if not isinstance(payload, dict):
        raise DeliveryDeferred("e-letter provider answered an unexpected JSON document")
    return payload


def _field(payload: Mapping[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise DeliveryDeferred(f"e-letter provider's answer lacks {name}")
    return value
