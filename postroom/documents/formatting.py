"""Locale-aware formatting of numbers, money, dates and addresses (Babel).

Templates receive finished strings from here, so a German invoice reads
``14.458,50 €`` and an English one ``€14,458.50`` without any logic in the template.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache

from babel import Locale
from babel.dates import format_date
from babel.numbers import NumberPattern, format_currency, format_decimal, parse_pattern

from postroom.documents.parties import PostalAddress, Recipient, Seller

# UN/ECE Recommendation 20 unit codes used on invoices, with their printed form.
_UNITS: dict[str, dict[str, str]] = {
    "C62": {"de": "Stk.", "en": "pc."},
    "H87": {"de": "Stk.", "en": "pc."},
    "LS": {"de": "pauschal", "en": "lump sum"},
    "HUR": {"de": "Std.", "en": "h"},
    "DAY": {"de": "Tag(e)", "en": "day(s)"},
    "MON": {"de": "Monat(e)", "en": "month(s)"},
    "ANN": {"de": "Jahr(e)", "en": "year(s)"},
    "MTK": {"de": "m²", "en": "m²"},
    "KMT": {"de": "km", "en": "km"},
}

MAX_ADDRESS_LINES = 6


# Babel parses the locale and the number pattern again on every call; an invoice formats a few
# hundred numbers, so both are parsed once here and handed to Babel ready-made.
_locale = cache(Locale.parse)


@cache
def _pattern(pattern: str) -> NumberPattern:
    return parse_pattern(pattern)


@dataclass(frozen=True, slots=True)
class Formatter:
    """Formats values for one locale and currency."""

    locale: str
    currency: str = "EUR"

    def money(self, amount: Decimal) -> str:
        """Amount with currency sign, e.g. ``14.458,50 €``."""
        return str(format_currency(amount, self.currency, locale=_locale(self.locale), currency_digits=True))

    def amount(self, amount: Decimal, decimals: int = 2) -> str:
        """Amount without currency sign, with exactly ``decimals`` fraction digits."""
        pattern = "#,##0." + "0" * decimals if decimals else "#,##0"
        return str(
            format_decimal(
                amount, format=_pattern(pattern), locale=_locale(self.locale), decimal_quantization=False
            )
        )

    def unit_price(self, amount: Decimal) -> str:
        """A unit price: two decimals, or up to four where the price has them."""
        exponent = amount.normalize().as_tuple().exponent
        decimals = max(2, min(4, -exponent)) if isinstance(exponent, int) else 2
        return self.amount(amount, decimals)

    def quantity(self, value: Decimal) -> str:
        """A quantity without trailing zeros: ``1``, ``2,5``."""
        return str(
            format_decimal(value.normalize(), format=_pattern("#,##0.####"), locale=_locale(self.locale))
        )

    def percent(self, rate: Decimal) -> str:
        """A tax rate in percent: ``19 %`` (de) or ``19%`` (en)."""
        number = str(
            format_decimal(rate.normalize(), format=_pattern("#,##0.##"), locale=_locale(self.locale))
        )
        return f"{number}\u00a0%" if self.locale == "de" else f"{number}%"

    def date(self, value: date) -> str:
        """A date in the locale's medium numeric form: ``20.11.2026`` or ``20 Nov 2026``."""
        if self.locale == "de":
            return str(format_date(value, format="dd.MM.yyyy", locale=_locale(self.locale)))
        return str(format_date(value, format="d MMM yyyy", locale=_locale(self.locale)))

    def unit(self, code: str) -> str:
        """The printed form of a UN/ECE unit code; unknown codes print as given."""
        return _UNITS.get(code, {}).get(self.locale, code)

    def country(self, code: str) -> str:
        """Country name in this locale."""
        return str(Locale.parse(self.locale).territories.get(code, code))

    def iban(self, iban: str) -> str:
        """IBAN in groups of four for printing."""
        return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))


def address_lines(recipient: Recipient, formatter: Formatter, home_country: str) -> list[str]:
    """The DIN 5008 address block: at most six lines, the country in capitals when abroad."""
    lines = [recipient.name]
    if recipient.attention:
        lines.append(recipient.attention)
    lines.extend(_street_lines(recipient))
    if recipient.country != home_country:
        lines.append(formatter.country(recipient.country).upper())
    if len(lines) > MAX_ADDRESS_LINES:
        raise ValueError("the address needs more than six lines")
    return lines


def return_address(seller: Seller) -> str:
    """The one-line sender above the window: ``Name · Street · Postcode City``."""
    return " · ".join([seller.name, *_street_lines(seller)])


def _street_lines(address: PostalAddress) -> list[str]:
    lines = []
    if address.street:
        lines.append(address.street)
    place = " ".join(part for part in (address.postcode, address.city) if part)
    if place:
        lines.append(place)
    return lines
