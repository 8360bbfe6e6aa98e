"""A local SMTP server that writes every message it accepts to ``<outbox>/<message id>.eml``."""

from __future__ import annotations

import re
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller

from postroom.embedded.ports import free_port

_UNSAFE = re.compile(r"[^A-Za-z0-9._@-]+")


def eml_name(message_id: str) -> str:
    """File name of a message in the outbox, derived from its Message-ID."""
    return _UNSAFE.sub("_", message_id.strip("<> ")) + ".eml"


class _OutboxHandler:
    def __init__(self, outbox: Path, refused: frozenset[str]) -> None:
        self.outbox = outbox
        self.refused = refused

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address.lower() in self.refused:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        content: bytes = envelope.original_content or envelope.content
        message = message_from_bytes(content, policy=default)
        target = self.outbox / eml_name(str(message.get("Message-ID", "no-id")))
        temporary = target.with_suffix(".tmp")
        temporary.write_bytes(content)
        temporary.replace(target)
        return "250 Message accepted for delivery"


class SmtpSink:
    """aiosmtpd on a loopback port; stands in for the mail server in the demo and the tests.

    Addresses in ``refused`` are answered with 550, as a real server answers an unknown
    mailbox, so that the permanent-failure path can be exercised end to end.
    """

    def __init__(self, outbox: Path, port: int | None = None, refused: frozenset[str] = frozenset()) -> None:
        self.outbox = outbox
        self.port = port or free_port()
        handler = _OutboxHandler(outbox, frozenset(address.lower() for address in refused))
        self._controller = Controller(
            handler, hostname="127.0.0.1", port=self.port, data_size_limit=25 * 1024 * 1024
        )

    @property
    def url(self) -> str:
        """``smtp://127.0.0.1:<port>``."""
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> SmtpSink:
        """Start serving in a background thread."""
        self.outbox.mkdir(parents=True, exist_ok=True)
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._controller.stop()

    def messages(self) -> list[Path]:
        """The ``.eml`` files received so far, oldest first."""
        return sorted(self.outbox.glob("*.eml"), key=lambda path: path.stat().st_mtime)

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object | TracebackType) -> None:
        self.stop()
