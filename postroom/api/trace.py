"""ASGI middleware: each request runs in a span of the caller's trace (``traceparent``) or a new one."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from postroom.tracing import TraceParent, span


class TraceParentMiddleware:
    """Reads the W3C ``traceparent`` request header, answers with this request's own, and makes
    the span current so jobs enqueued by the request carry it (see :mod:`postroom.tracing`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = dict(scope["headers"]).get(b"traceparent", b"").decode("latin-1")
        parent = TraceParent.parse(header) or TraceParent.start()
        with span(parent) as this:

            async def send_with_traceparent(message: Message) -> None:
                if message["type"] == "http.response.start":
                    MutableHeaders(scope=message)["traceparent"] = str(this)
                await send(message)

            await self.app(scope, receive, send_with_traceparent)
