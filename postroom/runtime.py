"""The long-lived objects one process needs, built once from the settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import redis

from postroom.channels.archive import ArchiveChannel, ArchiveStore, open_archive_store
from postroom.channels.base import Channel
from postroom.channels.eletter import ELetterChannel
from postroom.channels.email import DkimSigner, EmailBodies, EmailChannel
from postroom.channels.printing.channel import PrintChannel
from postroom.channels.printing.letter_shop import LetterShop, open_letter_shop
from postroom.core.db import Database, database
from postroom.core.documents import Fallback
from postroom.core.spool import Spool
from postroom.jobs.throttle import ChannelThrottle
from postroom.renderer.service import Renderer
from postroom.renderer.uploads import UploadedTemplates
from postroom.settings import Settings, get_settings


@dataclass
class Runtime:
    """Database, spool, renderer and channels of this process; engines stay warm inside."""

    settings: Settings
    db: Database = field(init=False)
    spool: Spool = field(init=False)

    def __post_init__(self) -> None:
        self.db = database(self.settings.database_url)
        self.spool = Spool(self.settings.spool_path)

    @cached_property
    def renderer(self) -> Renderer:
        """The renderer over the shipped template folder and the uploaded templates."""
        settings = self.settings
        renderer = Renderer.for_folder(
            settings.templates_dir,
            office_pool_size=settings.office_pool_size,
            office_max_conversions=settings.office_max_conversions,
            office_timeout_seconds=settings.office_timeout_seconds,
        )
        renderer.templates.attach(UploadedTemplates(self.db, settings.template_cache_path))
        return renderer

    @cached_property
    def throttle(self) -> ChannelThrottle:
        """The channels' shared send rates (see :mod:`postroom.jobs.throttle`)."""
        client = None
        if self.settings.redis_url:
            client = redis.Redis.from_url(self.settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
        return ChannelThrottle(
            client,
            self.settings.channel_rate_limits,
            max_wait_seconds=self.settings.channel_rate_wait_seconds,
        )

    @cached_property
    def archive(self) -> ArchiveStore:
        """The configured archive store."""
        return open_archive_store(
            self.settings.archive_url,
            s3_endpoint_url=self.settings.s3_endpoint_url,
            s3_region=self.settings.s3_region,
            require_lock=self.settings.archive_require_object_lock,
        )

    @cached_property
    def channels(self) -> dict[str, Channel]:
        """Every output channel available in this deployment, by name."""
        email = EmailChannel(
            self.settings.smtp,
            self.settings.email_from,
            EmailBodies(self.settings.templates_dir),
            timeout=self.settings.smtp_timeout_seconds,
            verify_tls=self.settings.smtp_verify_tls,
            dkim=DkimSigner.from_settings(self.settings),
        )
        printing = PrintChannel(self.db, self.letter_shop, duplex=self.settings.print_duplex)
        available: list[Channel] = [ArchiveChannel(self.archive), email, printing]
        if self.eletter is not None:
            available.append(self.eletter)
        return {channel.name: channel for channel in available}

    @cached_property
    def eletter(self) -> ELetterChannel | None:
        """The hybrid-mail provider's channel, when ``POSTROOM_ELETTER_URL`` is set."""
        return ELetterChannel.from_settings(self.settings)

    @cached_property
    def letter_shop(self) -> LetterShop:
        """The letter shop's drop for print batches."""
        return open_letter_shop(
            self.settings.print_target_url,
            client_keys=[self.settings.print_sftp_key_file] if self.settings.print_sftp_key_file else [],
            known_hosts=self.settings.print_sftp_known_hosts,
        )

    @cached_property
    def fallbacks(self) -> dict[str, Fallback]:
        """Where each channel's failed deliveries go, among the channels this deployment has."""
        return {
            failed: Fallback(fallback, self.channels[fallback].variant)
            for failed, fallback in self.settings.channel_fallbacks.items()
            if fallback in self.channels
        }


@lru_cache(maxsize=1)
def runtime() -> Runtime:
    """This process's runtime, from the environment's settings."""
    return Runtime(get_settings())
