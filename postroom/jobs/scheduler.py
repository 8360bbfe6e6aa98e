"""The clock of the maintenance jobs: print cut-offs, acknowledgement polling, purge sweeps,
lost fallback messages, e-letter status polling.

One process (``postroom scheduler``) sends the messages; workers run them. Every job is
idempotent, so a second scheduler, or a restart, costs a redundant run and nothing else.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from postroom.log import get_logger
from postroom.settings import Settings

log = get_logger(__name__)

BATCH_SETTLE_SECONDS = 5.0
"""How often running bulk runs are looked at for their end."""


@dataclass
class Periodic:
    """Something to send every ``every`` seconds, or at the daily ``times`` (HH:MM in ``zone``)."""

    name: str
    send: Callable[[], object]
    every: float | None = None
    times: tuple[str, ...] = ()
    zone: str = "Europe/Berlin"
    due: float = 0.0

    def schedule_next(self, now: float) -> None:
        """Set :attr:`due` to the next run after ``now`` (a ``time.time()`` value)."""
        if self.every is not None:
            self.due = now + self.every
            return
        zone = ZoneInfo(self.zone)
        local = datetime.fromtimestamp(now, zone)
        candidates = []
        for text in self.times:
            hour, minute = (int(part) for part in text.split(":"))
            at = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
            candidates.append(at if at.timestamp() > now else at + timedelta(days=1))
        self.due = min(candidates).timestamp()


def schedule(settings: Settings) -> list[Periodic]:
    """The periodic jobs of this deployment."""
    from postroom.jobs import actors

    cutoff = Periodic(
        "print cut-off",
        actors.cut_print_batches.send,
        every=settings.print_cutoff_interval_seconds,
        times=tuple(settings.print_cutoff_times),
        zone=settings.print_timezone,
    )
    jobs = [
        cutoff,
        Periodic(
            "print acknowledgements",
            actors.collect_print_acknowledgements.send,
            every=settings.print_ack_poll_seconds,
        ),
        Periodic("purge sweep", actors.sweep_purges.send, every=settings.purge_sweep_seconds),
        Periodic("bulk runs finished", actors.settle_batches.send, every=BATCH_SETTLE_SECONDS),
        Periodic(
            "stalled fallbacks",
            actors.resend_stalled_fallbacks.send,
            every=actors.FALLBACK_STALL.total_seconds(),
        ),
        Periodic(
            "stalled renders",
            actors.resend_stalled_renders.send,
            every=actors.RENDER_STALL.total_seconds() / 2,
        ),
        Periodic("event chain anchor", actors.anchor_event_chain.send, times=("00:15",)),
        Periodic(
            "unexpanded core runs",
            actors.resend_unexpanded_runs.send,
            every=actors.RENDER_STALL.total_seconds() / 2,
        ),
    ]
    daily = (
        ("payment plan review", actors.review_payment_plans.send, settings.payment_plan_review_times),
        ("dunning run", actors.run_dunning.send, settings.dunning_run_times),
        ("follow-up notices", actors.send_followup_notices.send, settings.followup_notice_times),
        ("booking export", actors.export_bookings.send, settings.booking_export_times),
    )
    jobs += [
        Periodic(name, send, times=tuple(times), zone=settings.print_timezone)
        for name, send, times in daily
        if times
    ]
    if settings.eletter_url:
        jobs.append(
            Periodic("e-letter status", actors.poll_eletter_status.send, every=settings.eletter_poll_seconds)
        )
    return jobs


def run(jobs: list[Periodic], stop: threading.Event, tick: float = 1.0) -> None:
    """Send each job when due until ``stop`` is set; interval jobs run once at start."""
    now = time.time()
    for job in jobs:
        if job.every is None:
            job.schedule_next(now)
    while not stop.is_set():
        now = time.time()
        for job in jobs:
            if now >= job.due:
                try:
                    job.send()
                except Exception as error:
                    log.warning("scheduled send failed", job=job.name, error=type(error).__name__)
                job.schedule_next(now)
        stop.wait(tick)
