"""Dramatiq middleware that records when a message is given up for good."""

from __future__ import annotations

from typing import Any

from dramatiq.broker import Broker, MessageProxy
from dramatiq.middleware import Middleware

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
