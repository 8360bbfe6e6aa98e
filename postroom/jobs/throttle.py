"""Per-channel send rates shared by every worker process, counted in Redis.

A bulk run must not flood the SMTP relay or the hybrid-mail provider: each channel may have a
ceiling of sends per second (``POSTROOM_CHANNEL_RATE_LIMITS``), enforced with Dramatiq's
sliding-window limiter over Redis so that all processes on all hosts share one count.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping

import redis
from dramatiq.rate_limits import WindowRateLimiter
from dramatiq.rate_limits.backends import RedisBackend

from postroom.channels.base import DeliveryDeferred

KEY_PREFIX = "postroom:rate:"


class ChannelThrottled(DeliveryDeferred):
    """The channel's send rate stayed at its ceiling for as long as a worker may wait."""

    code = "channel_throttled"
    retry_after = 1.0


class ChannelThrottle:
    """Waits for a free send slot of a channel; channels without a limit pass at once."""

    def __init__(
        self, client: redis.Redis | None, limits: Mapping[str, int], *, max_wait_seconds: float = 5.0
    ) -> None:
        """Without a Redis ``client`` (the embedded demo without Redis) nothing is limited."""
        self.limiters: dict[str, WindowRateLimiter] = {}
        if client is not None:
            backend = RedisBackend(client=client)
            self.limiters = {
                channel: WindowRateLimiter(backend, KEY_PREFIX + channel, limit=limit, window=1)  # type: ignore[no-untyped-call]
                for channel, limit in limits.items()
            }
        self.max_wait_seconds = max_wait_seconds

    def wait(self, channel: str) -> None:
        """Return once ``channel`` may send one more; :class:`ChannelThrottled` if it stays full."""
        limiter = self.limiters.get(channel)
        if limiter is None:
            return
        deadline = time.monotonic() + self.max_wait_seconds
        while True:
            with limiter.acquire(raise_on_failure=False) as acquired:
                if acquired:
                    return
            if time.monotonic() >= deadline:
                raise ChannelThrottled(f"channel {channel} is at its rate limit")
            # Slots free up at the next second; jitter keeps waiting workers from retrying in step.
            time.sleep(0.05 + random.random() * 0.1)  # noqa: S311 - jitter, not security
