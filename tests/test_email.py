from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ipaddress
import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import dkim  # type: ignore[import-untyped]
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID
from pydantic import SecretStr

from postroom.channels.base import ChannelUnavailable, DeliveryDeferred, DeliveryRejected, Handoff
from postroom.channels.email import (
    SIGNED_HEADERS,
    DkimConfigError,
    DkimSigner,
    EmailBodies,
    EmailChannel,
)
from postroom.embedded.ports import free_port
from postroom.embedded.smtp_sink import SmtpSink
from postroom.settings import Settings, SmtpTarget
from tests.conftest import example_handoff

PDF = b"%PDF-1.7\n" + b"x" * 2000
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def handoff(locale: str = "de") -> Handoff:
    return example_handoff(PDF, locale=locale)


def channel(
    port: int,
    *,
    implicit_tls: bool = False,
    username: str | None = None,
    password: str | None = None,
    **kwargs: Any,
) -> EmailChannel:
    target = SmtpTarget(
        host="127.0.0.1",
        port=port,
        implicit_tls=implicit_tls,
        username=username,
        password=SecretStr(password) if password is not None else None,
    )
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


# --- servers that record what they accept ------------------------------------------------------------


@dataclass
class Accepted:
    """One message a test server accepted, with what it knew about the session."""

    content: bytes
    mail_options: list[str]
    tls: bool
    authenticated: bool


class Scripted:
    """Answers each DATA with the next scripted reply (250 once the script is used up)."""

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.accepted: list[Accepted] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        reply = self.replies.pop(0) if self.replies else "250 2.0.0 OK"
        if reply.startswith("250"):
            self.accepted.append(
                Accepted(
                    content=envelope.original_content,
                    mail_options=list(envelope.mail_options),
                    tls=server.transport.get_extra_info("ssl_object") is not None,
                    authenticated=bool(session.authenticated),
                )
            )
        return reply


@pytest.fixture
def serve() -> Iterator[Any]:
    """Start aiosmtpd controllers on free loopback ports; all are stopped after the test."""
    controllers: list[Controller] = []

    def start(handler: Any, **kwargs: Any) -> int:
        port = free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
        controller.start()
        controllers.append(controller)
        return port

    yield start
    for controller in controllers:
        controller.stop()


def test_4xx_twice_then_250_delivers_exactly_once(serve: Any) -> None:
    handler = Scripted("451 4.3.0 try later", "451 4.7.1 greylisted")
    port = serve(handler)
    mail = channel(port)
    parcel = handoff()
    with pytest.raises(DeliveryDeferred, match="451"):
        asyncio.run(mail.send(parcel))
    with pytest.raises(DeliveryDeferred, match="451"):
        asyncio.run(mail.send(parcel))
    receipt = asyncio.run(mail.send(parcel))
    assert receipt.confirmed
    assert len(handler.accepted) == 1
    message = message_from_bytes(handler.accepted[0].content, policy=default)
    assert message["Message-ID"] == receipt.external_ref == f"<{parcel.delivery_id}@muster.example>"


@pytest.mark.parametrize("reply", ["550 5.1.1 erika.mustermann@example.org unknown", "552 5.3.4 too big"])
def test_5xx_at_data_is_rejected(serve: Any, reply: str) -> None:
    handler = Scripted(reply)
    with pytest.raises(DeliveryRejected, match=reply[:3]) as caught:
        asyncio.run(channel(serve(handler)).send(handoff()))
    assert "erika" not in str(caught.value)
    assert handler.accepted == []


def test_550_for_the_recipient_is_rejected(tmp_path: Path) -> None:
    parcel = handoff()
    assert parcel.recipient.email is not None
    with SmtpSink(tmp_path, refused=frozenset({parcel.recipient.email})) as sink:
        with pytest.raises(DeliveryRejected, match="recipient refused 550") as caught:
            asyncio.run(channel(sink.port).send(parcel))
        assert sink.messages() == []
    assert parcel.recipient.email not in str(caught.value)


def test_message_is_7bit_and_announces_its_size(serve: Any) -> None:
    handler = Scripted()
    asyncio.run(channel(serve(handler)).send(handoff()))
    [accepted] = handler.accepted
    assert max(accepted.content) < 0x80
    assert f"SIZE={len(accepted.content)}" in accepted.mail_options
    message = message_from_bytes(accepted.content, policy=default)
    body = message.get_body(("plain",))
    assert body is not None
    assert "Mit freundlichen Grüßen" in body.get_content()
    assert body["Content-Transfer-Encoding"] == "quoted-printable"


# --- DKIM ------------------------------------------------------------------------------------------

SELECTOR = "postroom2026"
DOMAIN = "muster.example"


@dataclass(frozen=True)
class DkimKey:
    """A private key file and the TXT record publishing its public key."""

    path: Path
    txt: bytes


def _txt_lookup(key: DkimKey, looked_up: list[bytes]) -> Any:
    def dnsfunc(name: bytes, timeout: float = 5) -> bytes | None:
        looked_up.append(name)
        return key.txt if name.rstrip(b".") == f"{SELECTOR}._domainkey.{DOMAIN}".encode() else None

    return dnsfunc


@pytest.fixture(scope="module")
def rsa_key(tmp_path_factory: pytest.TempPathFactory) -> DkimKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("dkim") / "rsa.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return DkimKey(path, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public))


def _signature_tags(content: bytes) -> dict[str, str]:
    message = message_from_bytes(content, policy=default)
    header = re.sub(r"\s+", "", str(message["DKIM-Signature"]))
    return dict(tag.split("=", 1) for tag in header.split(";") if tag)


def test_dkim_signature_verifies(serve: Any, rsa_key: DkimKey) -> None:
    signer = DkimSigner.from_key_file(SELECTOR, DOMAIN, rsa_key.path)
    handler = Scripted()
    receipt = asyncio.run(channel(serve(handler), dkim=signer).send(handoff()))
    assert receipt.confirmed
    [accepted] = handler.accepted
    assert accepted.content.startswith(b"DKIM-Signature: ")
    looked_up: list[bytes] = []
    assert dkim.verify(accepted.content, dnsfunc=_txt_lookup(rsa_key, looked_up))
    assert [name.rstrip(b".") for name in looked_up] == [f"{SELECTOR}._domainkey.{DOMAIN}".encode()]
    tags = _signature_tags(accepted.content)
    assert (tags["d"], tags["s"], tags["a"], tags["c"]) == (DOMAIN, SELECTOR, "rsa-sha256", "relaxed/relaxed")
    signed = set(tags["h"].lower().split(":"))
    required = {"from", "to", "subject", "date", "message-id", "mime-version", "content-type"}
    assert required <= signed
    assert {name.lower() for name in SIGNED_HEADERS} == signed
    # A changed subject or body no longer verifies.
    for before, after in [
        (b"Subject: Rechnung", b"Subject: Mahnung"),
        (b"RE-2026-000123", b"RE-2026-000124"),
    ]:
        tampered = accepted.content.replace(before, after)
        assert tampered != accepted.content
        assert not dkim.verify(tampered, dnsfunc=_txt_lookup(rsa_key, []))


def test_dkim_from_settings(rsa_key: DkimKey, tmp_path: Path) -> None:
    assert DkimSigner.from_settings(Settings()) is None
    signer = DkimSigner.from_settings(
        Settings(dkim_selector=SELECTOR, dkim_domain=DOMAIN, dkim_private_key_file=rsa_key.path)
    )
    assert signer is not None
    assert (signer.selector, signer.domain, signer.algorithm) == (SELECTOR, DOMAIN, "rsa-sha256")
    assert "PRIVATE" not in repr(signer)
    # PKCS#1 ("RSA PRIVATE KEY") with CRLF line ends works as well.
    traditional = serialization.load_pem_private_key(rsa_key.path.read_bytes(), None).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    crlf = tmp_path / "pkcs1.pem"
    crlf.write_bytes(traditional.replace(b"\n", b"\r\n"))
    message = b"From: a@muster.example\r\nTo: b@example.org\r\nSubject: x\r\n\r\nbody\r\n"
    signed = DkimSigner.from_key_file(SELECTOR, DOMAIN, crlf).sign(message)
    assert dkim.verify(signed, dnsfunc=_txt_lookup(rsa_key, []))


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ({"dkim_selector": SELECTOR}, ["POSTROOM_DKIM_DOMAIN", "POSTROOM_DKIM_PRIVATE_KEY_FILE"]),
        ({"dkim_selector": SELECTOR, "dkim_domain": DOMAIN}, ["POSTROOM_DKIM_PRIVATE_KEY_FILE"]),
        (
            {"dkim_private_key_file": Path("/etc/dkim.pem")},
            ["POSTROOM_DKIM_SELECTOR", "POSTROOM_DKIM_DOMAIN"],
        ),
    ],
)
def test_dkim_half_configured_is_an_error_naming_the_variables(
    given: dict[str, Any], missing: list[str]
) -> None:
    with pytest.raises(DkimConfigError) as caught:
        DkimSigner.from_settings(Settings(**given))
    assert str(caught.value).endswith("missing: " + ", ".join(missing))


SECRET_LOOKING = base64.b64encode(b"this is the secret key material 0123456789").decode()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "cannot be read"),
        (b"", "no PEM private key"),
        (f"-----BEGIN PRIVATE KEY-----\n{SECRET_LOOKING}\n-----END PRIVATE KEY-----\n".encode(), "neither"),
        (
            f"-----BEGIN RSA PRIVATE KEY-----\n{SECRET_LOOKING}!\n-----END RSA PRIVATE KEY-----\n".encode(),
            "damaged",
        ),
        (
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
            + SECRET_LOOKING.encode()
            + b"\n-----END ENCRYPTED PRIVATE KEY-----\n",
            "unencrypted",
        ),
    ],
)
def test_unusable_dkim_key_names_the_variable_not_the_key(
    tmp_path: Path, content: bytes | None, reason: str
) -> None:
    path = tmp_path / "dkim.pem"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DkimConfigError) as caught:
        DkimSigner.from_settings(
            Settings(dkim_selector=SELECTOR, dkim_domain=DOMAIN, dkim_private_key_file=path)
        )
    message = str(caught.value)
    assert message.startswith("POSTROOM_DKIM_PRIVATE_KEY_FILE ")
    assert reason in message
    assert SECRET_LOOKING[:12] not in message
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None or caught.value.__suppress_context__


def test_dkim_ed25519(serve: Any, tmp_path: Path) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    path = tmp_path / "ed25519.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    try:
        import nacl  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        with pytest.raises(DkimConfigError, match="Ed25519 key; signing with it needs PyNaCl"):
            DkimSigner.from_key_file(SELECTOR, DOMAIN, path)
        return
    signer = DkimSigner.from_key_file(SELECTOR, DOMAIN, path)
    assert signer.algorithm == "ed25519-sha256"
    handler = Scripted()
    asyncio.run(channel(serve(handler), dkim=signer).send(handoff()))
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    record = DkimKey(path, b"v=DKIM1; k=ed25519; p=" + base64.b64encode(public))
    assert dkim.verify(handler.accepted[0].content, dnsfunc=_txt_lookup(record, []))


# --- TLS and authentication -----------------------------------------------------------------------

USER, PASSWORD = "postroom", "s3cret-smtp-password"


@pytest.fixture(scope="module")
def server_tls(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    """A server context with a self-signed certificate for 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "postroom test smtp")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context


class Authenticator:
    """Accepts USER/PASSWORD and records the mechanisms used."""

    def __init__(self) -> None:
        self.mechanisms: list[str] = []

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        self.mechanisms.append(mechanism)
        valid = isinstance(auth_data, LoginPassword) and auth_data == (USER.encode(), PASSWORD.encode())
        return AuthResult(success=valid, handled=False)


@pytest.mark.parametrize("mechanism", ["LOGIN", "PLAIN"])
def test_starttls_and_auth(serve: Any, server_tls: ssl.SSLContext, mechanism: str) -> None:
    handler, authenticator = Scripted(), Authenticator()
    port = serve(
        handler,
        tls_context=server_tls,
        require_starttls=True,
        auth_required=True,
        authenticator=authenticator,
        auth_exclude_mechanism=[m for m in ("LOGIN", "PLAIN") if m != mechanism],
    )
    mail = channel(port, username=USER, password=PASSWORD, verify_tls=False)
    assert asyncio.run(mail.send(handoff())).confirmed
    [accepted] = handler.accepted
    assert accepted.tls
    assert accepted.authenticated
    assert authenticator.mechanisms == [mechanism]


def test_starttls_verifies_the_certificate_by_default(serve: Any, server_tls: ssl.SSLContext) -> None:
    handler = Scripted()
    port = serve(handler, tls_context=server_tls, require_starttls=True)
    with pytest.raises(DeliveryDeferred, match="SMTP connection failed"):
        asyncio.run(channel(port).send(handoff()))
    assert handler.accepted == []


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_implicit_tls_with_auth(serve: Any, server_tls: ssl.SSLContext) -> None:
    handler, authenticator = Scripted(), Authenticator()
    # aiosmtpd's auth_require_tls only knows STARTTLS; this connection is TLS from the first byte.
    port = serve(
        handler,
        ssl_context=server_tls,
        auth_required=True,
        auth_require_tls=False,
        authenticator=authenticator,
    )
    mail = channel(port, implicit_tls=True, username=USER, password=PASSWORD, verify_tls=False)
    assert asyncio.run(mail.send(handoff())).confirmed
    [accepted] = handler.accepted
    assert accepted.tls
    assert accepted.authenticated


def test_refused_credentials_are_retried_not_failed_over(serve: Any, server_tls: ssl.SSLContext) -> None:
    """535 is the hub's misconfiguration, not the recipient's: the mail waits for a fixed password
    (and the readiness check says so) instead of going to paper."""
    handler, authenticator = Scripted(), Authenticator()
    port = serve(
        handler,
        tls_context=server_tls,
        require_starttls=True,
        auth_required=True,
        authenticator=authenticator,
    )
    mail = channel(port, username=USER, password="wrong-password", verify_tls=False)
    with pytest.raises(ChannelUnavailable, match="authentication failed 535") as error:
        asyncio.run(mail.send(handoff()))
    assert "wrong-password" not in str(error.value)
    with pytest.raises(ChannelUnavailable, match="authentication failed 535"):
        asyncio.run(mail.check())
    # Without credentials the server's 530 at MAIL FROM means the same.
    with pytest.raises(ChannelUnavailable, match="authentication failed 530"):
        asyncio.run(channel(port, verify_tls=False).send(handoff()))
    assert handler.accepted == []
