"""The e-mail channel: multipart text + HTML with the PDF attached, sent over SMTP (aiosmtplib).

Confirmed on the server's final 250. 4xx replies and lost connections are retried
by the job; 5xx replies are permanent. The Message-ID derives from the delivery id,
so a retry after a crash carries the same Message-ID and receivers can deduplicate.

The message is serialised once, 7-bit clean (quoted-printable text, base64 PDF), optionally
DKIM-signed, and exactly those bytes are sent: a relay has no reason to re-encode the body,
so the signature survives, and the server's SIZE limit is checked against the real size.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import ssl
from dataclasses import dataclass, field
from email.generator import BytesGenerator
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8
from email.utils import format_datetime, formataddr, parseaddr
from io import BytesIO
from pathlib import Path
from typing import Any, Literal

import aiosmtplib
import dkim as dkimpy  # type: ignore[import-untyped]
from dkim.crypto import parse_pem_private_key  # type: ignore[import-untyped]
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
from postroom.settings import Settings, SmtpTarget


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
    """The complete message: multipart/mixed of (text | HTML) and the PDF.

    Text parts are quoted-printable and the PDF base64, so the message is 7-bit clean and
    no relay re-encodes it (which would break a DKIM signature).
    """
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
    message.set_content(bodies.render(handoff, "txt"), cte="quoted-printable")
    message.add_alternative(bodies.render(handoff, "html"), subtype="html", cte="quoted-printable")
    message.add_attachment(
        handoff.pdf, maintype="application", subtype="pdf", filename=f"{handoff.title}_{handoff.number}.pdf"
    )
    return message


def wire_bytes(message: EmailMessage, *, utf8: bool = False) -> bytes:
    """The message as sent: CRLF line ends, 7-bit transfer encodings, headers folded for SMTP.

    ``utf8`` keeps non-ASCII headers raw (for an SMTPUTF8 session) instead of RFC 2047 encoding them.
    """
    policy = (SMTPUTF8 if utf8 else SMTP).clone(cte_type="7bit")
    buffer = BytesIO()
    BytesGenerator(buffer, policy=policy).flatten(message)
    return buffer.getvalue()


# --- DKIM -------------------------------------------------------------------------------------------

_SELECTOR_VAR = "POSTROOM_DKIM_SELECTOR"
_DOMAIN_VAR = "POSTROOM_DKIM_DOMAIN"
_KEY_VAR = "POSTROOM_DKIM_PRIVATE_KEY_FILE"

SIGNED_HEADERS: tuple[str, ...] = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "Reply-To",
)
"""Header fields the DKIM signature covers (a field that is absent is signed as absent)."""

_OVERSIGNED: tuple[str, ...] = ("From", "To", "Subject")
"""Listed once more in ``h=``, so that a second instance added on the way breaks the signature."""

_PEM = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\s*(.+?)\s*-----END \1-----", re.DOTALL)
_ED25519_OID = bytes.fromhex("06032b6570")  # 1.3.101.112
_ED25519_SEED = bytes.fromhex("04220420")  # OCTET STRING { OCTET STRING (32 bytes) }


class DkimConfigError(ValueError):
    """The DKIM settings are incomplete or the key cannot be used.

    The message names the environment variable, never the key (nor any part of the file).
    """


@dataclass(frozen=True, slots=True)
class DkimSigner:
    """Signs outgoing messages for ``domain`` with the key published at ``<selector>._domainkey.<domain>``.

    ``private_key`` is what dkimpy takes: the PEM text of an RSA key, or the base64 seed of an
    Ed25519 key. It is left out of ``repr``.
    """

    selector: str
    domain: str
    private_key: bytes = field(repr=False)
    algorithm: Literal["rsa-sha256", "ed25519-sha256"] = "rsa-sha256"

    @classmethod
    def from_settings(cls, settings: Settings) -> DkimSigner | None:
        """The signer configured by ``POSTROOM_DKIM_*``, or ``None`` when none of them is set.

        Raises :class:`DkimConfigError` when only some are set or the key file is unusable;
        call it at startup so that a misconfiguration stops the process, not a delivery.
        """
        selector, domain, key_file = (
            settings.dkim_selector,
            settings.dkim_domain,
            settings.dkim_private_key_file,
        )
        if selector and domain and key_file:
            return cls.from_key_file(selector, domain, key_file)
        given = {_SELECTOR_VAR: selector, _DOMAIN_VAR: domain, _KEY_VAR: key_file}
        missing = [name for name, value in given.items() if not value]
        if len(missing) == len(given):
            return None
        together = f"{_SELECTOR_VAR}, {_DOMAIN_VAR} and {_KEY_VAR}"
        raise DkimConfigError(f"DKIM needs {together} together; missing: {', '.join(missing)}")

    @classmethod
    def from_key_file(cls, selector: str, domain: str, path: Path) -> DkimSigner:
        """Load an unencrypted PEM private key (RSA, PKCS#1 or PKCS#8; or Ed25519, PKCS#8) and test it."""
        try:
            pem = path.read_bytes()
        except OSError as error:
            raise DkimConfigError(f"{_KEY_VAR} cannot be read ({type(error).__name__})") from None
        signer = cls(selector, domain, *_private_key(pem.replace(b"\r\n", b"\n")))
        try:
            signer.signature(b"From: check@" + domain.encode() + b"\r\nSubject: check\r\n\r\ncheck\r\n")
        except dkimpy.NaClNotFoundError:
            raise DkimConfigError(f"{_KEY_VAR} holds an Ed25519 key; signing with it needs PyNaCl") from None
        except Exception as error:  # dkimpy raises several unrelated types; never show their text
            raise DkimConfigError(
                f"{_KEY_VAR} holds a key that cannot sign ({type(error).__name__})"
            ) from None
        return signer

    def signature(self, message: bytes) -> bytes:
        """The ``DKIM-Signature`` header line (CRLF-terminated) of ``message`` (bytes as sent)."""
        include = [name.lower().encode() for name in SIGNED_HEADERS + _OVERSIGNED]
        header: bytes = dkimpy.sign(
            message,
            self.selector.encode(),
            self.domain.encode(),
            self.private_key,
            canonicalize=(b"relaxed", b"relaxed"),
            signature_algorithm=self.algorithm.encode(),
            include_headers=include,
            linesep=b"\r\n",
        )
        return header

    def sign(self, message: bytes) -> bytes:
        """``message`` with its ``DKIM-Signature`` header field prepended."""
        return self.signature(message) + message


def _private_key(pem: bytes) -> tuple[bytes, Literal["rsa-sha256", "ed25519-sha256"]]:
    match = _PEM.search(pem)
    if match is None:
        raise DkimConfigError(f"{_KEY_VAR} holds no PEM private key")
    label = match.group(1)
    if label not in (b"PRIVATE KEY", b"RSA PRIVATE KEY"):
        raise DkimConfigError(
            f"{_KEY_VAR} must hold an unencrypted PEM private key ('PRIVATE KEY' or 'RSA PRIVATE KEY')"
        )
    try:
        der = base64.b64decode(b"".join(match.group(2).split()), validate=True)
    except (binascii.Error, ValueError):
        raise DkimConfigError(f"{_KEY_VAR} holds a damaged PEM block") from None
    if label == b"PRIVATE KEY" and _ED25519_OID in der[:16]:
        start = der.find(_ED25519_SEED)
        if start < 0 or len(der) < start + 4 + 32:
            raise DkimConfigError(f"{_KEY_VAR} holds an Ed25519 key in an unknown layout")
        return base64.b64encode(der[start + 4 : start + 4 + 32]), "ed25519-sha256"
    # Only the key's own PEM block, with LF line ends (dkimpy's parser needs them).
    block = b"-----BEGIN " + label + b"-----\n" + match.group(2) + b"\n-----END " + label + b"-----\n"
    try:
        key = parse_pem_private_key(block)
    except Exception:  # dkimpy's ASN.1 errors may quote the key's bytes
        raise DkimConfigError(f"{_KEY_VAR} holds neither an RSA nor an Ed25519 private key") from None
    bits = int(key["modulus"]).bit_length()
    if bits < 1024:
        raise DkimConfigError(f"{_KEY_VAR} holds an RSA key of {bits} bits; DKIM needs at least 1024")
    return block, "rsa-sha256"


# --- the channel -----------------------------------------------------------------------------------


class EmailChannel:
    """Sends the email variant to ``recipient.email``, DKIM-signed when ``dkim`` is given."""

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
        dkim: DkimSigner | None = None,
    ) -> None:
        self.smtp = smtp
        self.sender = sender
        self.bodies = bodies
        self.timeout = timeout
        self.dkim = dkim
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
        envelope_from = parseaddr(self.sender)[1]
        recipient = str(handoff.recipient.email)
        utf8 = not (envelope_from.isascii() and recipient.isascii())
        data = wire_bytes(message, utf8=utf8)
        if self.dkim is not None:
            try:
                data = await asyncio.to_thread(self.dkim.sign, data)
            except Exception as error:  # dkimpy's messages may quote header values
                raise DeliveryRejected(f"DKIM signing failed ({type(error).__name__})") from None
        size = len(data)
        try:
            async with self._client() as client:
                options: list[str] = []
                if utf8:
                    if not client.supports_extension("smtputf8"):
                        raise DeliveryRejected("the address needs SMTPUTF8, which the server does not offer")
                    options.append("SMTPUTF8")
                # aiosmtplib declares SIZE=<bytes> in MAIL FROM itself when the server offers SIZE.
                limit = int(client.esmtp_extensions.get("size") or 0)
                if limit and size > limit:
                    raise DeliveryRejected(
                        f"message of {size} bytes exceeds the server's SIZE limit of {limit}"
                    )
                await client.sendmail(envelope_from, [recipient], data, mail_options=options)
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
        except aiosmtplib.SMTPResponseException as error:
            if error.code in AUTH_REPLY_CODES:
                raise _by_code(error.code, "server replied") from None
            raise ChannelUnavailable(f"SMTP server unavailable ({type(error).__name__})") from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            raise ChannelUnavailable(f"SMTP server unavailable ({type(error).__name__})") from None


AUTH_REPLY_CODES = frozenset({530, 534, 535, 538})
"""Authentication required or refused: the hub's credentials are wrong, not the recipient, so the
mail is retried (and /readyz reports the e-mail channel failed) instead of failing over to paper."""


def _by_code(code: int, what: str) -> DeliveryRejected | DeliveryDeferred | ChannelUnavailable:
    # Only the numeric code is kept: reply texts often quote the recipient address.
    if code in AUTH_REPLY_CODES:
        return ChannelUnavailable(f"SMTP authentication failed {code}")
    if 400 <= code < 500:
        return DeliveryDeferred(f"SMTP {what} {code}")
    return DeliveryRejected(f"SMTP {what} {code}")
