"""Statutory default interest (§288 BGB) on open items, from the base-rate table of §247 BGB.

The convention (DESIGN §7): an item accrues interest from ``default_since`` (inclusive) to
the key date (inclusive) on its open amount, per actual day on a year of 365 days (also in
leap years), at the base rate plus 5 points (consumer, §288(1)) or 9 points (business,
§288(2)); the rate switches on the day a new base rate takes effect (1 January, 1 July).
The segments are summed exactly and each item's interest is rounded half-up to the cent
once, at the end.

The base rates live in ``base_rates.toml`` next to this module (one line per half-year);
``POSTROOM_BASE_RATES_FILE`` names another file. The table is read once per process. A key
date after the table's last entry keeps the last known rate; a period starting before the
first entry has no rate and is refused.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Literal

from postroom.money import ZERO, round_money
from postroom.settings import get_settings

DebtorKind = Literal["consumer", "business"]
"""Whether a consumer takes part in the transaction (§288(1)) or not (§288(2) BGB)."""

SURCHARGE: Mapping[DebtorKind, Decimal] = {"consumer": Decimal(5), "business": Decimal(9)}
"""Percentage points above the base rate."""

DAYS_PER_YEAR = 365
SHIPPED_TABLE = Path(__file__).resolve().parent / "base_rates.toml"
_ONE_DAY = timedelta(days=1)


class BaseRateError(ValueError):
    """The base-rate table is malformed, or has no rate for a day before its first entry."""


@dataclass(frozen=True, slots=True)
class BaseRate:
    """The §247 BGB base rate in percent p.a., in force from ``valid_from``."""

    valid_from: date
    rate: Decimal


@dataclass(frozen=True, slots=True)
class BaseRateTable:
    """Base rates in ascending order of the day they take effect (at least one)."""

    rates: tuple[BaseRate, ...]

    def __post_init__(self) -> None:
        if not self.rates:
            raise BaseRateError("the base-rate table is empty")
        days = [entry.valid_from for entry in self.rates]
        if days != sorted(set(days)):
            raise BaseRateError("base rates must be in ascending order of valid_from, each day once")

    @property
    def first_day(self) -> date:
        """The first day the table knows a rate for."""
        return self.rates[0].valid_from

    def rate_on(self, day: date) -> Decimal:
        """The base rate in force on ``day``; after the last entry, the last known rate."""
        if day < self.first_day:
            raise BaseRateError(f"no base rate before {self.first_day.isoformat()}")
        current = self.rates[0].rate
        for entry in self.rates:
            if entry.valid_from > day:
                break
            current = entry.rate
        return current

    def periods(self, start: date, end: date) -> list[tuple[date, date, Decimal]]:
        """``start`` to ``end`` (both inclusive) cut where the base rate changes.

        Each piece is ``(first day, last day, base rate)``; entries that repeat the
        previous rate do not cut.
        """
        if end < start:
            return []
        pieces: list[tuple[date, date, Decimal]] = []
        piece_start, rate = start, self.rate_on(start)
        for entry in self.rates:
            if start < entry.valid_from <= end and entry.rate != rate:
                pieces.append((piece_start, entry.valid_from - _ONE_DAY, rate))
                piece_start, rate = entry.valid_from, entry.rate
        pieces.append((piece_start, end, rate))
        return pieces


@dataclass(frozen=True, slots=True)
class RateSegment:
    """Days at one rate: ``days`` from ``start`` to ``end`` (inclusive) at ``rate`` % p.a."""

    start: date
    end: date
    days: int
    base_rate: Decimal
    rate: Decimal


@dataclass(frozen=True, slots=True)
class ItemInterest:
    """The interest on one open item and how it was computed.

    ``days`` is 0 and ``segments`` empty when the item is not (yet) in default on the key
    date. ``interest`` is rounded half-up to the cent once, over all segments.
    """

    principal: Decimal
    start: date | None
    end: date
    days: int
    segments: tuple[RateSegment, ...]
    interest: Decimal


def annual_rate(base_rate: Decimal, debtor: DebtorKind) -> Decimal:
    """The default interest rate in percent p.a.: base rate + 5 (consumer) or + 9 (business) points."""
    return base_rate + SURCHARGE[debtor]


def statutory_interest(
    principal: Decimal,
    default_since: date | None,
    key_date: date,
    debtor: DebtorKind,
    table: BaseRateTable | None = None,
) -> ItemInterest:
    """Default interest on ``principal`` (the open amount) from ``default_since`` to ``key_date``.

    Both days count. Without ``default_since``, or when it lies after ``key_date``, the
    item accrues nothing. Raises :class:`BaseRateError` for a start before the table.
    """
    rates = table if table is not None else base_rate_table()
    if default_since is None or default_since > key_date:
        return ItemInterest(principal, default_since, key_date, 0, (), ZERO)
    segments = tuple(
        RateSegment(
            start=first,
            end=last,
            days=(last - first).days + 1,
            base_rate=base,
            rate=annual_rate(base, debtor),
        )
        for first, last, base in rates.periods(default_since, key_date)
    )
    # Exact until the one division: amount × percent × days, over 100 × 365.
    numerator = sum((principal * segment.rate * segment.days for segment in segments), Decimal(0))
    interest = round_money(numerator / (100 * DAYS_PER_YEAR))
    return ItemInterest(
        principal=principal,
        start=default_since,
        end=key_date,
        days=sum(segment.days for segment in segments),
        segments=segments,
        interest=interest,
    )


def parse_base_rates(text: str, source: str = "base rates") -> BaseRateTable:
    """A table from TOML text: ``[base_rates]`` with ``YYYY-MM-DD = rate`` lines.

    Rates are read as exact decimals. Every key must be a 1 January or 1 July, the only
    days the base rate changes (§247(1) BGB). ``source`` names the file in errors.
    """
    try:
        document = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as error:
        raise BaseRateError(f"{source} is not valid TOML: {error}") from None
    section = document.get("base_rates")
    if not isinstance(section, dict) or not section:
        raise BaseRateError(f"{source} needs a non-empty [base_rates] table")
    return BaseRateTable(tuple(sorted(_entries(section.items(), source), key=lambda e: e.valid_from)))


def _entries(items: Iterable[tuple[str, object]], source: str) -> Iterable[BaseRate]:
    for key, value in items:
        try:
            day = date.fromisoformat(key)
        except ValueError:
            raise BaseRateError(f"{source}: {key!r} is not a date YYYY-MM-DD") from None
        if (day.month, day.day) not in ((1, 1), (7, 1)):
            raise BaseRateError(f"{source}: {key} is neither 1 January nor 1 July")
        if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
            raise BaseRateError(f"{source}: the rate for {key} must be a number")
        try:
            rate = Decimal(value)
        except ArithmeticError:
            raise BaseRateError(f"{source}: the rate for {key} must be a number") from None
        if not rate.is_finite():
            raise BaseRateError(f"{source}: the rate for {key} must be a number")
        yield BaseRate(valid_from=day, rate=rate)


@cache
def load_base_rates(path: Path) -> BaseRateTable:
    """The table in the file ``path``, read once per process."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise BaseRateError(f"cannot read the base-rate file {path}: {error.strerror}") from None
    return parse_base_rates(text, path.name)


def base_rate_table() -> BaseRateTable:
    """The configured table: ``POSTROOM_BASE_RATES_FILE``, else the shipped ``base_rates.toml``."""
    configured = get_settings().base_rates_file
    return load_base_rates((configured or SHIPPED_TABLE).resolve())
