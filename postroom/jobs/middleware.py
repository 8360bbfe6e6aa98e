"""Dramatiq middleware: giving a message up for good, and carrying the trace context."""

from __future__ import annotations

import threading
from typing import Any

import structlog
from dramatiq.broker import Broker, MessageProxy
from dramatiq.message import Message
from dramatiq.middleware import Middleware

from postroom import tracing
from postroom.log import get_logger

log = get_logger(__name__)


class GiveUp(Middleware):
    """Calls the actor option ``on_give_up(*args, error=...)`` once a message has failed for good.

    That covers a permanent error (the actor's ``throws``), retries running out, and
    a message dropped by :class:`~dramatiq.middleware.AgeLimit`. Add it before
    ``Retries``: "after" hooks run in reverse order, so it then sees ``message.failed``.
    """

    @property
    def actor_options(self) -> set[str]:
        return {"on_give_up"}

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any | None = None,
        exception: BaseException | None = None,
    ) -> None:
        if exception is not None and message.failed:
            self._give_up(broker, message, exception)

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        if message.failed:
            self._give_up(broker, message, None)

    def _give_up(self, broker: Broker, message: MessageProxy, error: BaseException | None) -> None:
        handler = broker.get_actor(message.actor_name).options.get("on_give_up")
        log.warning("message given up", actor=message.actor_name, message_id=message.message_id)
        if handler is not None:
            handler(*message.args, error=error)


class TraceContext(Middleware):
    """Carries the current ``traceparent`` in the options of every message sent, and runs each
    message in a span of the trace it carries (see :mod:`postroom.tracing`)."""

    def __init__(self) -> None:
        self._spans = threading.local()

    def before_enqueue(self, broker: Broker, message: Message[Any], delay: int | None) -> None:
        parent = tracing.current()
        if parent is not None and "traceparent" not in message.options:
            message.options["traceparent"] = str(parent)

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        structlog.contextvars.clear_contextvars()  # the ids the previous message bound
        parent = tracing.TraceParent.parse(message.options.get("traceparent"))
        if parent is None:
            return
        scope = tracing.span(parent)
        scope.__enter__()
        self._spans.scope = scope

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any | None = None,
        exception: BaseException | None = None,
    ) -> None:
        scope = getattr(self._spans, "scope", None)
        if scope is not None:
            self._spans.scope = None
            scope.__exit__(None, None, None)

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        self.after_process_message(broker, message)
