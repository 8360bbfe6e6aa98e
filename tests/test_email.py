from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Iterator
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from postroom.channels.base import DeliveryDeferred, DeliveryRejected, Handoff
from postroom.channels.email import EmailBodies, EmailChannel
from postroom.documents.types.invoice import InvoiceRequest
from postroom.embedded.ports import free_port
from postroom.embedded.smtp_sink import SmtpSink
from postroom.settings import Settings, SmtpTarget
from tests.conftest import example

PDF = b"%PDF-1.7\n" + b"x" * 2000
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def handoff(locale: str = "de") -> Handoff:
    request = InvoiceRequest.model_validate(example("invoice"))
    return Handoff(
        delivery_id=uuid.uuid4(),
        document_id=uuid.uuid4(),
        document_type="invoice",
        title="Rechnung" if locale == "de" else "Invoice",
        number=request.number,
        issue_date=request.data.issue_date,
        locale=locale,
        retention="voucher",
        recipient=request.recipient,
        seller=request.data.seller,
        pdf=PDF,
        sha256=hashlib.sha256(PDF).hexdigest(),
    )


def channel(port: int, **kwargs: Any) -> EmailChannel:
    target = SmtpTarget(host="127.0.0.1", port=port, implicit_tls=False, username=None, password=None)
    return EmailChannel(
        target, "Muster Immobilien <rechnung@muster.example>", EmailBodies(TEMPLATES), timeout=5, **kwargs
    )


class Replying:
    """An SMTP server that answers DATA with a fixed reply."""

    def __init__(self, reply: str) -> None:
        self.reply = reply

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        return self.reply


@pytest.fixture
def replying_server(request: pytest.FixtureRequest) -> Iterator[int]:
    port = free_port()
    controller = Controller(Replying(request.param), hostname="127.0.0.1", port=port)
    controller.start()
    yield port
    controller.stop()


def test_message_is_multipart_with_pdf_and_delivery_message_id(tmp_path: Path) -> None:
    parcel = handoff()
    with SmtpSink(tmp_path) as sink:
        receipt = asyncio.run(channel(sink.port).send(parcel))
        [eml] = sink.messages()
    assert receipt.confirmed
    assert receipt.external_ref == f"<{parcel.delivery_id}@muster.example>"
    message = message_from_bytes(eml.read_bytes(), policy=default)
    assert isinstance(message, EmailMessage)
    assert message.get_content_type() == "multipart/mixed"
    assert message["Message-ID"] == receipt.external_ref
    assert message["To"] == "Erika Mustermann <erika.mustermann@example.org>"
    assert message["Reply-To"] == "Muster Immobilien GmbH <buchhaltung@muster-immobilien.example>"
    alternative, attachment = message.iter_parts()
    assert alternative.get_content_type() == "multipart/alternative"
    text, html = (part.get_content_type() for part in alternative.iter_parts())
    assert (text, html) == ("text/plain", "text/html")
    assert "RE-2026-000123" in alternative.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == "Rechnung_RE-2026-000123.pdf"
    assert attachment.get_content() == PDF


def test_english_body(tmp_path: Path) -> None:
    with SmtpSink(tmp_path) as sink:
        asyncio.run(channel(sink.port).send(handoff("en")))
        [eml] = sink.messages()
    body = message_from_bytes(eml.read_bytes(), policy=default).get_body(("plain",))
    assert body is not None
    assert "the following document as a PDF: Invoice RE-2026-000123" in body.get_content()
    assert body.get_content().startswith("Dear Erika Mustermann,")


@pytest.mark.parametrize("replying_server", ["451 4.3.0 try later"], indirect=True)
def test_4xx_is_deferred(replying_server: int) -> None:
    with pytest.raises(DeliveryDeferred, match="451"):
        asyncio.run(channel(replying_server).send(handoff()))


@pytest.mark.parametrize(
    "replying_server", ["554 5.7.1 erika.mustermann@example.org rejected"], indirect=True
)
def test_5xx_is_permanent_and_does_not_echo_the_reply(replying_server: int) -> None:
    with pytest.raises(DeliveryRejected) as caught:
        asyncio.run(channel(replying_server).send(handoff()))
    assert "554" in str(caught.value)
    assert "example.org" not in str(caught.value)


def test_connection_refused_is_deferred() -> None:
    with pytest.raises(DeliveryDeferred, match="connection"):
        asyncio.run(channel(free_port()).send(handoff()))


def test_server_size_limit_is_respected(tmp_path: Path) -> None:
    port = free_port()
    controller = Controller(Replying("250 OK"), hostname="127.0.0.1", port=port, data_size_limit=1000)
    controller.start()
    try:
        with pytest.raises(DeliveryRejected, match="SIZE limit of 1000"):
            asyncio.run(channel(port).send(handoff()))
    finally:
        controller.stop()


def test_smtp_url_parsing() -> None:
    smtp = Settings(smtp_url="smtps://user%40corp:p%3Ass@mail.example:2465").smtp
    assert (smtp.host, smtp.port, smtp.implicit_tls, smtp.username) == (
        "mail.example",
        2465,
        True,
        "user@corp",
    )
    assert smtp.password is not None
    assert smtp.password.get_secret_value() == "p:ss"
    assert Settings(smtp_url="smtp://relay").smtp.port == 25


def test_salutation_fits_the_recipient() -> None:
    from dataclasses import replace

    from postroom.channels.email import salutation

    parcel = handoff()
    assert salutation(parcel) == "Guten Tag Erika Mustermann,"
    company = parcel.recipient.model_copy(update={"kind": "business", "name": "Schmidt & Söhne KG"})
    assert salutation(replace(parcel, recipient=company)) == "Sehr geehrte Damen und Herren,"
    team = parcel.recipient.model_copy(update={"kind": "internal", "name": "Team Forderungsmanagement"})
    assert salutation(replace(parcel, recipient=team, locale="en")) == "Hello Team Forderungsmanagement,"
