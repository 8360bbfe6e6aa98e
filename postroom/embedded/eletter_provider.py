"""A hybrid-mail provider on a loopback port, speaking the protocol of :mod:`postroom.channels.eletter`.

It stands in for the real provider in the tests and the demo: OAuth2 client credentials, presigned
uploads, letters created once per ``Idempotency-Key``, status queries, and status webhooks signed
with the shared secret. Letters advance on demand (:meth:`ELetterProvider.advance`) or, with
``auto_advance``, by themselves through ``accepted → printed → sent → delivered``. Faults are
injected per operation (:meth:`ELetterProvider.fail_next`): an error status with ``Retry-After``,
or a slow answer that outlasts the client's timeout (the request still takes effect afterwards).

Nothing is printed: the provider keeps the SHA-256 and size of every PDF it received, never the PDF.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from postroom.channels.eletter import SIGNATURE_HEADER, STATUS_RANK
from postroom.embedded.ports import free_port
from postroom.webhooks import sign

OPERATIONS = ("token", "upload", "store", "submit", "status")
"""Operations :meth:`ELetterProvider.fail_next` can disturb: token endpoint, opening an upload, the PUT,
the letter submission and the status query."""
AUTO_STATUSES = ("accepted", "printed", "sent", "delivered")


class AsgiServer:
    """Serves an ASGI app with uvicorn in a background thread on a loopback port."""

    def __init__(self, app: ASGIApp, *, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port()
        config = uvicorn.Config(
            app, host=host, port=self.port, log_level="warning", access_log=False, lifespan="auto"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=f"asgi-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        """``http://<host>:<port>``."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> AsgiServer:
        """Start serving; returns once the server accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the ASGI server on port {self.port} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> AsgiServer:
        return self.start()

    def __exit__(self, *exc: object | TracebackType) -> None:
        self.stop()


@dataclass
class Letter:
    """A letter the provider accepted for processing (no address, no PDF: only fingerprints)."""

    letter_id: str
    reference: str
    idempotency_key: str
    sha256: str
    size: int
    country: str
    status: str = "submitted"
    history: list[str] = field(default_factory=lambda: ["submitted"])

    def view(self) -> dict[str, Any]:
        """The letter as the API shows it."""
        return {
            "letter_id": self.letter_id,
            "reference": self.reference,
            "status": self.status,
            "country": self.country,
            "sha256": self.sha256,
            "size": self.size,
        }


@dataclass
class Upload:
    """A presigned upload slot and, once stored, its content's fingerprint."""

    upload_id: str
    sha256: str
    size: int
    expires: int
    stored: bool = False


@dataclass(frozen=True)
class Fault:
    """One disturbed answer: ``status`` (with ``Retry-After`` when given) after ``delay`` seconds.

    ``status`` ``None`` answers normally, only late (a timeout on the client's side).
    """

    status: int | None = 429
    retry_after: str | None = "1"
    delay: float = 0.0


@dataclass
class Webhook:
    """A status event and the hub's answer to each attempt to deliver it."""

    event_id: str
    letter_id: str
    status: str
    body: bytes
    answers: list[int] = field(default_factory=list)

    @property
    def delivered(self) -> bool:
        """The hub acknowledged the event with a 2xx."""
        return bool(self.answers) and 200 <= self.answers[-1] < 300


class ELetterProvider:
    """The provider simulator: an ASGI app plus the runner serving it (see the module docstring)."""

    def __init__(
        self,
        *,
        client_id: str = "postroom",
        client_secret: str = "provider-client-secret",  # noqa: S107 - a simulator's default
        webhook_secret: str = "provider-webhook-secret",  # noqa: S107 - a simulator's default
        webhook_url: str | None = None,
        token_ttl: float = 3600.0,
        auto_advance: float | None = None,
        webhook_attempts: int = 5,
        webhook_backoff: float = 0.2,
        max_bytes: int = 10 * 1024 * 1024,
        port: int | None = None,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.webhook_secret = webhook_secret
        self.webhook_url = webhook_url
        self.token_ttl = token_ttl
        self.auto_advance = auto_advance
        self.webhook_attempts = webhook_attempts
        self.webhook_backoff = webhook_backoff
        self.max_bytes = max_bytes
        self.drop_webhooks = False
        """When set, events are recorded but never sent (lost webhooks)."""
        self.requests: dict[str, int] = dict.fromkeys(OPERATIONS, 0)
        """Requests received per operation, faults included."""
        self.tokens_issued = 0
        self.unauthorised = 0
        """API requests answered 401 (missing, unknown, revoked or expired token)."""
        self.webhooks: list[Webhook] = []
        self._lock = threading.RLock()
        self._tokens: dict[str, float] = {}
        self._uploads: dict[str, Upload] = {}
        self._letters: dict[str, Letter] = {}
        self._by_key: dict[str, str] = {}
        self._faults: dict[str, deque[Fault]] = {operation: deque() for operation in OPERATIONS}
        self._storage_key = secrets.token_bytes(32)
        self._events = itertools.count(1)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.app = Starlette(
            routes=[
                Route("/oauth/token", self._token, methods=["POST"]),
                Route("/v1/uploads", self._open_upload, methods=["POST"]),
                Route("/storage/{upload_id}", self._store, methods=["PUT"]),
                Route("/v1/letters", self._submit, methods=["POST"]),
                Route("/v1/letters/{letter_id}", self._status, methods=["GET"]),
            ]
        )
        self._server = AsgiServer(self.app, port=port)

    # --- running --------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The API's base URL (``POSTROOM_ELETTER_URL``)."""
        return self._server.url

    def start(self) -> ELetterProvider:
        """Serve in a background thread."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving and the automatic advances."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._server.stop()

    def __enter__(self) -> ELetterProvider:
        return self.start()

    def __exit__(self, *exc: object | TracebackType) -> None:
        self.stop()

    def hub_environment(self, provider: str = "pingen") -> dict[str, str]:
        """The ``POSTROOM_ELETTER_*`` variables of a hub that uses this provider as ``provider``."""
        return {
            "POSTROOM_ELETTER_URL": self.url,
            "POSTROOM_ELETTER_PROVIDER": provider,
            "POSTROOM_ELETTER_CLIENT_ID": self.client_id,
            "POSTROOM_ELETTER_CLIENT_SECRET": self.client_secret,
            "POSTROOM_ELETTER_WEBHOOK_SECRET": self.webhook_secret,
        }

    # --- control and inspection -----------------------------------------------------------------

    def fail_next(
        self,
        operation: str,
        count: int = 1,
        *,
        status: int | None = 429,
        retry_after: str | None = "1",
        delay: float = 0.0,
    ) -> None:
        """Disturb the next ``count`` requests of ``operation`` (one of :data:`OPERATIONS`)."""
        if operation not in OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}; one of {', '.join(OPERATIONS)}")
        with self._lock:
            self._faults[operation].extend([Fault(status, retry_after, delay)] * count)

    def revoke_tokens(self) -> None:
        """Invalidate every access token issued so far (clients must fetch a new one)."""
        with self._lock:
            self._tokens.clear()

    @property
    def letters(self) -> list[Letter]:
        """Copies of the letters received, in order."""
        with self._lock:
            return [replace(letter, history=list(letter.history)) for letter in self._letters.values()]

    def letter(self, letter_id: str) -> Letter:
        """A copy of one letter."""
        with self._lock:
            letter = self._letters[letter_id]
            return replace(letter, history=list(letter.history))

    def letters_for(self, reference: str) -> list[Letter]:
        """The letters submitted with ``reference`` (a delivery id)."""
        return [letter for letter in self.letters if letter.reference == reference]

    def webhooks_for(self, letter_id: str) -> list[Webhook]:
        """The status events sent (or dropped) for one letter, in order."""
        with self._lock:
            return [webhook for webhook in self.webhooks if webhook.letter_id == letter_id]

    @property
    def uploads(self) -> int:
        """PDFs stored (uploads completed)."""
        with self._lock:
            return sum(upload.stored for upload in self._uploads.values())

    def advance(self, letter_id: str, status: str, *, notify: bool = True) -> Webhook | None:
        """Move a letter forward to ``status`` and (unless ``notify`` is off) deliver the webhook.

        Raises :class:`ValueError` for a backward move or an unknown status.
        """
        rank = STATUS_RANK.get(status)
        with self._lock:
            letter = self._letters[letter_id]
            if rank is None or rank <= STATUS_RANK[letter.status]:
                raise ValueError(f"letter {letter_id} cannot move from {letter.status} to {status}")
            letter.status = status
            letter.history.append(status)
        return self.send_event(letter_id, status) if notify else None

    def send_event(
        self, letter_id: str, status: str | None = None, *, event_id: str | None = None
    ) -> Webhook:
        """Deliver a status event for a letter (its current status unless ``status`` is given)
        without changing the letter: replays and late events."""
        with self._lock:
            letter = self._letters[letter_id]
            event = {
                "event_id": event_id or f"evt_{next(self._events):06d}_{secrets.token_hex(4)}",
                "letter_id": letter_id,
                "reference": letter.reference,
                "status": status or letter.status,
                "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
        webhook = Webhook(
            event_id=str(event["event_id"]),
            letter_id=letter_id,
            status=str(event["status"]),
            body=json.dumps(event, separators=(",", ":")).encode(),
        )
        with self._lock:
            self.webhooks.append(webhook)
        self.redeliver(webhook)
        return webhook

    def redeliver(self, webhook: Webhook) -> int | None:
        """POST the event (again), freshly signed, retrying non-2xx answers with backoff; the last answer.

        ``None`` when webhooks are dropped or no URL is configured.
        """
        if self.drop_webhooks or not self.webhook_url:
            return None
        answer: int | None = None
        for attempt in range(self.webhook_attempts):
            if attempt and self._stop.wait(self.webhook_backoff * 2 ** (attempt - 1)):
                break
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(self.webhook_secret, webhook.body),
            }
            try:
                response = httpx.post(self.webhook_url, content=webhook.body, headers=headers, timeout=5)
                answer = response.status_code
            except httpx.HTTPError:
                answer = 599
            with self._lock:
                webhook.answers.append(answer)
            if 200 <= answer < 300 or answer in (400, 401, 404, 422):
                break
        return answer

    # --- the API --------------------------------------------------------------------------------

    async def _disturbed(self, operation: str, request: Request) -> Response | None:
        with self._lock:
            self.requests[operation] += 1
            fault = self._faults[operation].popleft() if self._faults[operation] else None
        if fault is None:
            return None
        if fault.delay:
            await request.body()  # received (and cached) before the client gives up waiting
            await asyncio.sleep(fault.delay)
        if fault.status is None:
            return None
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else None
        return JSONResponse({"error": "injected"}, status_code=fault.status, headers=headers)

    def _authorised(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        with self._lock:
            expires = self._tokens.get(token)
            valid = scheme.lower() == "bearer" and expires is not None and expires > time.monotonic()
            self.unauthorised += not valid
        return valid

    async def _token(self, request: Request) -> Response:
        if (fault := await self._disturbed("token", request)) is not None:
            return fault
        form = {key: values[0] for key, values in parse_qs((await request.body()).decode()).items()}
        client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
        scheme, _, basic = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "basic":
            client_id, _, client_secret = base64.b64decode(basic).decode().partition(":")
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        valid = hmac.compare_digest(client_id, self.client_id) and hmac.compare_digest(
            client_secret, self.client_secret
        )
        if not valid:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = time.monotonic() + self.token_ttl
            self.tokens_issued += 1
        return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": self.token_ttl})

    def _signature(self, upload_id: str, expires: int) -> str:
        return hmac.new(self._storage_key, f"{upload_id}:{expires}".encode(), hashlib.sha256).hexdigest()

    async def _open_upload(self, request: Request) -> Response:
        if (fault := await self._disturbed("upload", request)) is not None:
            return fault
        if not self._authorised(request):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        try:
            body = await request.json()
            sha256, size = str(body["sha256"]), int(body["size"])
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "sha256 and size required"}, status_code=422)
        if size > self.max_bytes:
            return JSONResponse({"error": "file too large"}, status_code=413)
        upload_id = f"upl_{secrets.token_hex(8)}"
        expires = int(time.time()) + 600
        with self._lock:
            self._uploads[upload_id] = Upload(upload_id, sha256, size, expires)
        signature = self._signature(upload_id, expires)
        url = f"{self.url}/storage/{upload_id}?expires={expires}&signature={signature}"
        return JSONResponse({"upload_id": upload_id, "url": url, "expires_in": 600}, status_code=201)

    async def _store(self, request: Request) -> Response:
        if (fault := await self._disturbed("store", request)) is not None:
            return fault
        upload_id = request.path_params["upload_id"]
        try:
            expires = int(request.query_params.get("expires", ""))
        except ValueError:
            return Response(status_code=403)
        signature = request.query_params.get("signature", "")
        if not hmac.compare_digest(signature, self._signature(upload_id, expires)) or expires < time.time():
            return Response(status_code=403)
        content = await request.body()
        with self._lock:
            upload = self._uploads.get(upload_id)
            if upload is None:
                return Response(status_code=404)
            if hashlib.sha256(content).hexdigest() != upload.sha256 or len(content) != upload.size:
                return JSONResponse({"error": "content does not match the announced sha256"}, status_code=400)
            upload.stored = True
        return Response(status_code=200)

    async def _submit(self, request: Request) -> Response:
        if (fault := await self._disturbed("submit", request)) is not None:
            return fault
        if not self._authorised(request):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        key = request.headers.get("Idempotency-Key", "")
        if not key:
            return JSONResponse({"error": "Idempotency-Key required"}, status_code=400)
        try:
            body = await request.json()
            upload_id, reference = str(body["upload_id"]), str(body["reference"])
            country = str(body.get("country", "DE"))
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "upload_id and reference required"}, status_code=422)
        with self._lock:
            upload = self._uploads.get(upload_id)
            if upload is None or not upload.stored:
                return JSONResponse({"error": "unknown or incomplete upload"}, status_code=422)
            existing = self._by_key.get(key)
            if existing is not None:
                letter = self._letters[existing]
                if letter.sha256 != upload.sha256:
                    return JSONResponse({"error": "Idempotency-Key used for another file"}, status_code=422)
                return JSONResponse(letter.view(), status_code=200)
            letter = Letter(
                letter_id=f"ltr_{secrets.token_hex(8)}",
                reference=reference,
                idempotency_key=key,
                sha256=upload.sha256,
                size=upload.size,
                country=country,
            )
            self._letters[letter.letter_id] = letter
            self._by_key[key] = letter.letter_id
        if self.auto_advance is not None:
            self._start_auto_advance(letter.letter_id, self.auto_advance)
        return JSONResponse(letter.view(), status_code=201)

    async def _status(self, request: Request) -> Response:
        if (fault := await self._disturbed("status", request)) is not None:
            return fault
        if not self._authorised(request):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        with self._lock:
            letter = self._letters.get(request.path_params["letter_id"])
            view = letter.view() if letter is not None else None
        if view is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        return JSONResponse(view)

    # --- automatic progress ---------------------------------------------------------------------

    def _start_auto_advance(self, letter_id: str, delay: float) -> None:
        def run() -> None:
            for status in AUTO_STATUSES:
                if self._stop.wait(delay):
                    return
                try:
                    self.advance(letter_id, status)
                except ValueError:
                    continue  # moved on meanwhile (advanced by hand)

        thread = threading.Thread(target=run, name=f"eletter-{letter_id}", daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()
