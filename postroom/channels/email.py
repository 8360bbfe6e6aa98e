"""The e-mail channel: multipart text + HTML with the PDF attached, sent over SMTP (aiosmtplib).

Confirmed on the server's final 250. 4xx replies and lost connections are retried
by the job; 5xx replies are permanent. The Message-ID derives from the delivery id,
so a retry after a crash carries the same Message-ID and receivers can deduplicate.
"""

from __future__ import annotations

import ssl
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from pathlib import Path
from typing import Any

import aiosmtplib
from jinja2 import FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.sandbox import SandboxedEnvironment

from postroom.channels.base import (
    ChannelUnavailable,
    DeliveryDeferred,
    DeliveryRejected,
    Handoff,
    HandoffReceipt,
)
from postroom.core.models import utcnow
from postroom.documents.formatting import Formatter
from postroom.settings import SmtpTarget


class EmailBodies:
    """Text and HTML bodies from sandboxed Jinja templates.

    Lookup order: ``<type>/email/message.<locale>.<ext>.j2``, then ``_email/message.<locale>.<ext>.j2``.
    """

    def __init__(self, templates_root: Path) -> None:
        self.environment = SandboxedEnvironment(
            loader=FileSystemLoader(templates_root),
            autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )

    def render(self, handoff: Handoff, extension: str) -> str:
        """The ``txt`` or ``html`` body of ``handoff``."""
        names = [
            f"{handoff.document_type}/email/message.{handoff.locale}.{extension}.j2",
            f"_email/message.{handoff.locale}.{extension}.j2",
        ]
        return self.environment.select_template(names).render(_body_context(handoff))


_SALUTATIONS = {
    "de": ("Guten Tag {name},", "Sehr geehrte Damen und Herren,", "Hallo {name},"),
    "en": ("Dear {name},", "Dear Sir or Madam,", "Hello {name},"),
}


def salutation(handoff: Handoff) -> str:
    """Greeting by recipient kind: a person by name, a company formally, a team internally."""
    person, company, team = _SALUTATIONS.get(handoff.locale, _SALUTATIONS["en"])
    recipient = handoff.recipient
    if recipient.kind == "internal":
        return team.format(name=recipient.name)
    if recipient.kind == "consumer":
        return person.format(name=recipient.name)
    return company


def _body_context(handoff: Handoff) -> dict[str, Any]:
    fmt = Formatter(handoff.locale)
    return {
        "title": handoff.title,
        "number": handoff.number,
        "issue_date": fmt.date(handoff.issue_date),
        "salutation": salutation(handoff),
        "seller": handoff.seller.model_dump(),
    }


def build_message(handoff: Handoff, sender: str, bodies: EmailBodies) -> EmailMessage:
    """The complete message: multipart/mixed of (text | HTML) and the PDF."""
    if handoff.recipient.email is None:
        raise DeliveryRejected("recipient has no e-mail address")
    _, sender_address = parseaddr(sender)
    domain = sender_address.rpartition("@")[2] or "postroom.localhost"
    message = EmailMessage()
    message["Subject"] = f"{handoff.title} {handoff.number}"
    message["From"] = sender
    message["To"] = Address(display_name=handoff.recipient.name, addr_spec=handoff.recipient.email)
    if handoff.seller.email:
        message["Reply-To"] = formataddr((handoff.seller.name, handoff.seller.email))
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = f"<{handoff.delivery_id}@{domain}>"
    message["X-Postroom-Document"] = str(handoff.document_id)
    message.set_content(bodies.render(handoff, "txt"))
    message.add_alternative(bodies.render(handoff, "html"), subtype="html")
    message.add_attachment(
        handoff.pdf, maintype="application", subtype="pdf", filename=f"{handoff.title}_{handoff.number}.pdf"
    )
    return message


class EmailChannel:
    """Sends the email variant to ``recipient.email``."""

    name = "email"
    variant = "email"

    def __init__(
        self,
        smtp: SmtpTarget,
        sender: str,
        bodies: EmailBodies,
        *,
        timeout: float = 30.0,
        verify_tls: bool = True,
    ) -> None:
        self.smtp = smtp
        self.sender = sender
        self.bodies = bodies
        self.timeout = timeout
        self.tls_context = ssl.create_default_context()
        if not verify_tls:
            self.tls_context.check_hostname = False
            self.tls_context.verify_mode = ssl.CERT_NONE

    def _client(self) -> aiosmtplib.SMTP:
        return aiosmtplib.SMTP(
            hostname=self.smtp.host,
            port=self.smtp.port,
            use_tls=self.smtp.implicit_tls,
            start_tls=None,  # STARTTLS whenever the server offers it
            username=self.smtp.username,
            password=self.smtp.password.get_secret_value() if self.smtp.password else None,
            timeout=self.timeout,
            tls_context=self.tls_context,
        )

    async def send(self, handoff: Handoff) -> HandoffReceipt:
        """Send once; the final 250 confirms the hand-off."""
        message = build_message(handoff, self.sender, self.bodies)
        size = len(message.as_bytes())
        try:
            async with self._client() as client:
                limit = int(client.esmtp_extensions.get("size") or 0)
                if limit and size > limit:
                    raise DeliveryRejected(
                        f"message of {size} bytes exceeds the server's SIZE limit of {limit}"
                    )
                await client.send_message(message)
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = sorted({refusal.code for refusal in error.recipients})
            raise _by_code(codes[0] if codes else 550, "recipient refused") from None
        except aiosmtplib.SMTPResponseException as error:
            raise _by_code(error.code, "server replied") from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            raise DeliveryDeferred(f"SMTP connection failed ({type(error).__name__})") from None
        return HandoffReceipt(external_ref=str(message["Message-ID"]), confirmed=True)

    async def check(self) -> None:
        """Connect and greet the server."""
        try:
            async with self._client() as client:
                await client.noop()
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            raise ChannelUnavailable(f"SMTP server unavailable ({type(error).__name__})") from None


def _by_code(code: int, what: str) -> DeliveryRejected | DeliveryDeferred:
    # Only the numeric code is kept: reply texts often quote the recipient address.
    if 400 <= code < 500:
        return DeliveryDeferred(f"SMTP {what} {code}")
    return DeliveryRejected(f"SMTP {what} {code}")
