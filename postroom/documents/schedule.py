"""Calendar arithmetic for schedules: adding months with the day clamped to the month's end.

``add_months(date(2027, 1, 31), 1)`` is 28 February 2027 (29 February in a leap year).
A series of due dates is always counted from its first date, so a schedule starting on the
31st returns to the 31st in every month that has one (31 Jan, 28 Feb, 31 Mar, ...) instead of
drifting to the 28th after February.
"""

from __future__ import annotations

import calendar
from datetime import date


def add_months(start: date, months: int) -> date:
    """``start`` moved by ``months`` months (back when negative), the day clamped to the month's end."""
    index = start.year * 12 + (start.month - 1) + months
    year, month = divmod(index, 12)
    if not 1 <= year <= 9999:
        raise ValueError("the date leaves the supported calendar range (years 1 to 9999)")
    last_day = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(start.day, last_day))


def monthly_dates(first: date, count: int, interval_months: int = 1) -> list[date]:
    """``count`` dates from ``first`` (inclusive), ``interval_months`` apart, each counted from ``first``."""
    if count < 0:
        raise ValueError("count must not be negative")
    if interval_months < 1:
        raise ValueError("interval_months must be at least 1")
    return [add_months(first, index * interval_months) for index in range(count)]
