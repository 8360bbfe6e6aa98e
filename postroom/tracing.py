"""W3C Trace Context (``traceparent``) from an API request into every job it causes.

The API takes a caller's ``traceparent`` (or starts a trace), answers with its own, and the
Dramatiq middleware :class:`postroom.jobs.middleware.TraceContext` carries it in each message's
options to the workers and on into the jobs they send. While a trace is current its id is bound
to every log line as ``trace_id``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import structlog

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_current: ContextVar[TraceParent | None] = ContextVar("postroom_traceparent", default=None)


@dataclass(frozen=True, slots=True)
class TraceParent:
    """One span of a trace: the trace id, this span's id and the trace flags."""

    trace_id: str
    span_id: str
    flags: str = "01"

    @classmethod
    def parse(cls, header: str | None) -> TraceParent | None:
        """The ``traceparent`` header's value, or ``None`` when it is missing or malformed
        (an all-zero id is invalid by the specification)."""
        match = _TRACEPARENT.match((header or "").strip().lower())
        if match is None or set(match[1]) == {"0"} or set(match[2]) == {"0"}:
            return None
        return cls(match[1], match[2], match[3])

    @classmethod
    def start(cls) -> TraceParent:
        """A new trace."""
        return cls(secrets.token_hex(16), secrets.token_hex(8))

    def child(self) -> TraceParent:
        """A new span of the same trace."""
        return TraceParent(self.trace_id, secrets.token_hex(8), self.flags)

    def __str__(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"


def current() -> TraceParent | None:
    """The span this code runs in, if any."""
    return _current.get()


@contextmanager
def span(parent: TraceParent) -> Iterator[TraceParent]:
    """Run the block in a new span under ``parent``, its trace id bound to the log lines."""
    this = parent.child()
    token = _current.set(this)
    with structlog.contextvars.bound_contextvars(trace_id=this.trace_id):
        try:
            yield this
        finally:
            _current.reset(token)
