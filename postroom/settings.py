"""Runtime configuration, read from ``POSTROOM_*`` environment variables.

With nothing set, postroom runs on its embedded defaults: SQLite under ``./var``,
the archive in ``./var/archive``, transient PDFs in ``./var/spool`` and e-mail to a
local SMTP sink. Production sets every one of these explicitly.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_core import from_json
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from postroom.documents.parties import Seller

PROJECT_ROOT = Path(__file__).resolve().parent.parent

Scope = Literal[
    "documents:write",
    "documents:read",
    "batches:write",
    "core:write",
    "core:read",
    "archive:read",
    "admin",
]


Clock = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
"""A time of day, HH:MM."""


class CollectionAgency(BaseModel):
    """A collection agency (Inkasso) items can be handed to: its business address, no personal data."""

    key: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")
    name: str = Field(min_length=1, max_length=200)
    street: str = Field(min_length=1, max_length=200)
    postcode: str = Field(min_length=1, max_length=10)
    city: str = Field(min_length=1, max_length=200)
    country: str = Field(default="DE", pattern=r"^[A-Z]{2}$")
    phone: str | None = Field(default=None, max_length=40)
    email: str | None = Field(default=None, max_length=320)


class FollowupAddressee(BaseModel):
    """A user or a group follow-ups are assigned to: where its notices go and, for a group, who
    belongs to it (any member may take over the group's tasks)."""

    email: str = Field(min_length=3, max_length=320)
    members: list[str] = Field(default_factory=list)


class BookingAccounts(BaseModel):
    """The ledger accounts of the booking export (defaults: DATEV SKR03)."""

    receivables: str = "1400"
    """Forderungen aus Lieferungen und Leistungen (the customers' collective account)."""
    bank: str = "1200"
    clearing: str = "1360"
    """Geldtransit: money received and not yet placed on an invoice, or refunded."""
    customer_credit: str = "1495"
    """Credit balances of customers (money received beyond their open items)."""
    revenue: dict[str, str] = Field(default_factory=lambda: {"19": "8400", "7": "8300", "0": "8100"})
    """Revenue account per VAT rate (percent, as in the invoice lines)."""
    output_vat: dict[str, str] = Field(default_factory=lambda: {"19": "1776", "7": "1771"})
    fees: str = "2700"
    """Dunning fees, the §288(5) flat sum and returned-debit fees charged on (no VAT: damages)."""
    interest: str = "2650"
    write_off: str = "2400"
    """Forderungsverluste (the net part; the VAT part is corrected on the output VAT account, §17 UStG)."""
    collection_costs: str = "4970"
    commission_expense: str = "4760"
    input_vat: str = "1576"
    agent_payables: str = "1610"
    advances: str = "1530"
    discount_income: str = "2700"
    """What an agent paid for early payment of a commission (discounting)."""


class ArchiveRestriction(BaseModel):
    """What an auditor key may see of the archive: documents issued in a date range, of some types."""

    issued_from: date | None = None
    issued_to: date | None = None
    document_types: frozenset[str] | None = None


class ApiKey(BaseModel):
    """One API key: a public id (used in logs), the secret or its SHA-256, scopes, and for an
    auditor key optionally the part of the archive it may see."""

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    secret: SecretStr | None = None
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    scopes: frozenset[Scope]
    archive: ArchiveRestriction = Field(default_factory=ArchiveRestriction)

    @model_validator(mode="after")
    def _one_secret(self) -> ApiKey:
        if (self.secret is None) == (self.sha256 is None):
            raise ValueError("give exactly one of 'secret' or 'sha256'")
        return self

    @property
    def digest(self) -> str:
        """SHA-256 (hex) of the secret; the only form kept for comparison."""
        if self.sha256 is not None:
            return self.sha256
        assert self.secret is not None
        return hashlib.sha256(self.secret.get_secret_value().encode()).hexdigest()

    def matches(self, token: str) -> bool:
        """Constant-time comparison of a presented bearer token."""
        return hmac.compare_digest(hashlib.sha256(token.encode()).hexdigest(), self.digest)


class SmtpTarget(BaseModel):
    """Parsed ``POSTROOM_SMTP_URL``."""

    host: str
    port: int
    implicit_tls: bool
    username: str | None
    password: SecretStr | None


class Settings(BaseSettings):
    """All of postroom's configuration. Field ``foo`` is read from ``POSTROOM_FOO``."""

    # hide_input_in_errors: a bad URL or key list must not echo its password into the logs.
    model_config = SettingsConfigDict(env_prefix="POSTROOM_", extra="ignore", hide_input_in_errors=True)

    var_dir: Path = Path("var")
    database_url: str = ""
    redis_url: str | None = None
    archive_url: str = ""
    spool_dir: Path | None = None
    templates_dir: Path = PROJECT_ROOT / "templates"
    template_cache_dir: Path | None = None
    examples_dir: Path = PROJECT_ROOT / "examples"
    base_rates_file: Path | None = None

    s3_endpoint_url: str | None = None
    s3_region: str = "eu-central-1"
    archive_require_object_lock: bool = True
    archive_supplier_name: str = Field(default="postroom", max_length=200)
    """The company named as data supplier in GoBD Z3 exports (``index.xml``)."""

    smtp_url: str = "smtp://127.0.0.1:8025"
    smtp_timeout_seconds: float = 30.0
    smtp_verify_tls: bool = True
    email_from: str = "postroom <noreply@postroom.localhost>"
    # DKIM signing of outgoing e-mail: set all three or none. The key file is an unencrypted PEM key
    # (RSA of at least 1024 bits, 2048 recommended; Ed25519 needs PyNaCl). Completeness and the key are
    # checked when the e-mail channel is built: postroom.channels.email.DkimSigner.from_settings.
    dkim_selector: str | None = Field(default=None, max_length=63, pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]*$")
    dkim_domain: str | None = Field(default=None, max_length=253, pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]*$")
    dkim_private_key_file: Path | None = None

    api_keys: Annotated[list[ApiKey], NoDecode] = []
    webhook_secret: SecretStr | None = None
    callback_allow_private_networks: bool = False
    callback_timeout_seconds: float = 10.0

    office_pool_size: int = Field(default=2, ge=1, le=16)
    office_max_conversions: int = Field(default=200, ge=1)
    office_timeout_seconds: float = Field(default=60.0, gt=0)

    render_timeout_seconds: int = 120
    delivery_timeout_seconds: int = 300
    job_max_retries: int = 8
    job_max_age_seconds: int = 24 * 3600
    # `postroom worker` serves its Prometheus metrics here (GET /metrics); port 0 turns it off.
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port: int = Field(default=9191, ge=0, le=65535)
    # A worker silent for this long is taken for dead: the messages it held go back to their queue.
    worker_heartbeat_timeout_seconds: float = Field(default=60.0, ge=1)
    # Out of a million queue commands, how many also look for dead workers (Dramatiq's maintenance).
    queue_maintenance_chance: int = Field(default=1000, ge=1, le=1_000_000)
    purge_failed_after_hours: int = Field(default=30 * 24, ge=1)
    channel_fallbacks: dict[str, str] = {"email": "print", "eletter": "print"}
    # Sends per second per channel across all workers (Redis); a channel not named is not limited.
    channel_rate_limits: dict[str, Annotated[int, Field(ge=1)]] = {"email": 50, "eletter": 10}
    # How long a worker waits for a free slot before the delivery is retried later.
    channel_rate_wait_seconds: float = Field(default=5.0, ge=0)
    # e-letter: a hybrid-mail provider's REST API (postroom.channels.eletter documents the protocol);
    # the channel exists only when eletter_url is set. Webhooks arrive at /v1/webhooks/eletter/<provider>.
    eletter_url: str | None = None
    eletter_provider: str = Field(default="pingen", pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")
    eletter_client_id: str = ""
    eletter_client_secret: SecretStr | None = None
    eletter_webhook_secret: SecretStr | None = None
    eletter_webhook_tolerance_seconds: int = Field(default=300, ge=10)
    eletter_countries: list[str] = ["DE", "AT", "CH"]
    eletter_max_pages: int | None = Field(default=20, ge=1)
    eletter_max_bytes: int | None = Field(default=10 * 1024 * 1024, ge=1024)
    eletter_timeout_seconds: float = Field(default=30.0, gt=0)
    eletter_poll_seconds: int = Field(default=300, ge=1)
    eletter_poll_after_seconds: int = Field(default=600, ge=0)
    purge_sweep_seconds: int = Field(default=3600, ge=10)

    # print: batches for the letter shop, handed off to a hot folder (file://) or SFTP (sftp://)
    print_target_url: str = ""
    print_sftp_key_file: Path | None = None
    print_sftp_known_hosts: Path | None = None
    print_cutoff_times: list[Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]] = Field(
        default=["16:00"], min_length=1
    )
    print_cutoff_interval_seconds: int | None = Field(default=None, ge=1)
    print_timezone: str = "Europe/Berlin"
    print_batch_max_pieces: int = Field(default=10_000, ge=1, le=999_999)  # the inserter code's 6 digits
    print_duplex: bool = True
    print_dl_max_sheets: int = Field(default=5, ge=1)
    print_ack_poll_seconds: int = Field(default=30, ge=1)

    log_level: str = "INFO"
    log_json: bool = True

    # The core: who issues invoices, number ranges, terms (see README, "The core").
    issuer: Seller | None = Field(
        default=None, description="The issuing company printed on every core document (JSON)."
    )
    invoice_prefix: str = Field(default="RE", pattern=r"^[A-Z]{1,6}$")
    credit_note_prefix: str = Field(default="GS", pattern=r"^[A-Z]{1,6}$")
    commission_statement_prefix: str = Field(default="PA", pattern=r"^[A-Z]{1,6}$")
    followup_prefix: str = Field(default="WV", pattern=r"^[A-Z]{1,6}$")
    payment_terms_days: int = Field(default=14, ge=0, le=120)
    commission_payable_on: Literal["invoice_paid", "invoice_issued"] = "invoice_paid"
    commission_discount_rate: Decimal = Field(default=Decimal("2.5"), ge=0, le=20)
    followup_wait_days: int = Field(default=14, ge=0, le=365)
    followup_group: str = Field(default="auftragsmanagement", min_length=1, max_length=64)

    # Receivables: dunning, collection, follow-ups, accounts, bookings (see README, "Receivables").
    dunning_policy_file: Path | None = None
    """The dunning policy (TOML); the shipped ``dunning_policy.toml`` when unset."""
    dunning_prefix: str = Field(default="MA", pattern=r"^[A-Z]{1,6}$")
    collection_prefix: str = Field(default="IK", pattern=r"^[A-Z]{1,6}$")
    payment_plan_prefix: str = Field(default="RV", pattern=r"^[A-Z]{1,6}$")
    account_statement_prefix: str = Field(default="KA", pattern=r"^[A-Z]{1,6}$")
    dunning_group: str = Field(default="forderungsmanagement", min_length=1, max_length=64)
    dunning_run_times: list[Clock] = Field(default_factory=list)
    """Daily times of the scheduled dunning run (key date: that day); none by default."""
    followup_notice_times: list[Clock] = Field(default_factory=lambda: ["07:00"])
    payment_plan_review_times: list[Clock] = Field(default_factory=lambda: ["06:00"])
    """Daily times of the payment-plan review (as of that day); before the dunning run's."""
    followup_directory: dict[str, FollowupAddressee] = Field(default_factory=dict)
    """Users and groups by name (JSON): their e-mail address and, for groups, their members."""
    collection_agencies: list[CollectionAgency] = Field(default_factory=list)
    collection_export_dir: Path | None = None
    booking_accounts: BookingAccounts = Field(default_factory=BookingAccounts)
    booking_export_dir: Path | None = None
    booking_export_times: list[Clock] = Field(default_factory=lambda: ["23:30"])

    @field_validator("api_keys", mode="before")
    @classmethod
    def _parse_api_keys(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip()
            return from_json(value) if value else []
        return value

    @model_validator(mode="after")
    def _embedded_defaults(self) -> Settings:
        self.var_dir = self.var_dir.resolve()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.var_dir / 'postroom.db'}"
        if not self.archive_url:
            self.archive_url = (self.var_dir / "archive").as_uri()
        if self.spool_dir is None:
            self.spool_dir = self.var_dir / "spool"
        if not self.print_target_url:
            self.print_target_url = (self.var_dir / "print").as_uri()
        if self.template_cache_dir is None:
            self.template_cache_dir = self.var_dir / "template-cache"
        if self.collection_export_dir is None:
            self.collection_export_dir = self.var_dir / "collection"
        if self.booking_export_dir is None:
            self.booking_export_dir = self.var_dir / "bookings"
        scheme = urlsplit(self.archive_url).scheme
        if scheme not in ("file", "s3"):
            raise ValueError(f"archive_url must start with file:// or s3://, not {scheme}://")
        if urlsplit(self.smtp_url).scheme not in ("smtp", "smtps"):
            raise ValueError("smtp_url must start with smtp:// or smtps://")
        return self

    @property
    def spool_path(self) -> Path:
        """Folder of transient rendered PDFs (set by the validator)."""
        assert self.spool_dir is not None
        return self.spool_dir

    @property
    def print_staging_path(self) -> Path:
        """Where print files are assembled before they go to the letter shop."""
        return self.var_dir / "print-staging"

    @property
    def template_cache_path(self) -> Path:
        """Where uploaded template versions are unpacked (set by the validator)."""
        assert self.template_cache_dir is not None
        return self.template_cache_dir

    @property
    def smtp(self) -> SmtpTarget:
        """The SMTP server as host, port, TLS mode and credentials."""
        parts = urlsplit(self.smtp_url)
        implicit_tls = parts.scheme == "smtps"
        return SmtpTarget(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (465 if implicit_tls else 25),
            implicit_tls=implicit_tls,
            username=unquote(parts.username) if parts.username else None,
            password=SecretStr(unquote(parts.password)) if parts.password else None,
        )

    def business_day(self) -> date:
        """Today in the business's time zone (``print_timezone``): the date the core issues on."""
        return datetime.now(ZoneInfo(self.print_timezone)).date()

    def api_key_by_id(self, key_id: str) -> ApiKey | None:
        """The configured key with the public id ``key_id``, if any."""
        return next((key for key in self.api_keys if key.id == key_id), None)

    def api_key_for(self, token: str) -> ApiKey | None:
        """The configured key whose secret is ``token``, if any."""
        for key in self.api_keys:
            if key.matches(token):
                return key
        return None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
