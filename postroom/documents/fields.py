"""Strict field types shared by every document schema.

Amounts, quantities and rates arrive as decimal strings (never JSON numbers, which
would pass through binary floating point somewhere upstream); dates as ISO
``YYYY-MM-DD`` strings; identifiers are checked with python-stdnum.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema
from stdnum import iban as stdnum_iban
from stdnum.eu import vat as stdnum_vat
from stdnum.exceptions import ValidationError as StdnumError


def _decimal_string(pattern: str, example: str) -> Any:
    compiled = re.compile(pattern)

    def parse(value: object) -> Decimal:
        if not isinstance(value, str):
            raise ValueError(
                f'must be a decimal string such as "{example}", not a JSON {type(value).__name__}'
            )
        if not compiled.fullmatch(value):
            # The value itself is not quoted: error messages never echo request content.
            raise ValueError(f'is not a decimal string such as "{example}"')
        try:
            return Decimal(value)
        except InvalidOperation as error:  # pragma: no cover - the pattern excludes this
            raise ValueError("is not a decimal number") from error

    return BeforeValidator(parse)


def _schema(pattern: str, example: str) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "pattern": f"^{pattern}$", "examples": [example]})


_AMOUNT = r"-?\d{1,12}(\.\d{1,2})?"
_UNIT_PRICE = r"-?\d{1,12}(\.\d{1,4})?"
_QUANTITY = r"-?\d{1,9}(\.\d{1,4})?"
_RATE = r"\d{1,2}(\.\d{1,2})?"
_PERCENT = r"(100(\.0{1,4})?|\d{1,2}(\.\d{1,4})?)"

Amount = Annotated[Decimal, _decimal_string(_AMOUNT, "1234.50"), _schema(_AMOUNT, "1234.50")]
"""A money amount with at most two decimals."""
UnitPrice = Annotated[Decimal, _decimal_string(_UNIT_PRICE, "12.5000"), _schema(_UNIT_PRICE, "12.5000")]
"""A price per unit with at most four decimals (EN 16931 BT-146)."""
Quantity = Annotated[Decimal, _decimal_string(_QUANTITY, "1"), _schema(_QUANTITY, "1")]
"""A quantity with at most four decimals."""
TaxRate = Annotated[Decimal, _decimal_string(_RATE, "19"), _schema(_RATE, "19")]
"""A VAT rate in percent, 0 to 99.99."""
Percent = Annotated[Decimal, _decimal_string(_PERCENT, "40"), _schema(_PERCENT, "40")]
"""A share in percent, 0 to 100 with at most four decimals (commission shares, fees)."""


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_date(value: object) -> object:
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError("must be a date string YYYY-MM-DD")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date), WithJsonSchema({"type": "string", "format": "date"})]
"""A calendar date given as ``YYYY-MM-DD``."""


def _iban(value: str) -> str:
    try:
        return str(stdnum_iban.validate(value))
    except StdnumError as error:
        raise ValueError("is not a valid IBAN") from error


def _vat_id(value: str) -> str:
    try:
        return str(stdnum_vat.validate(value))
    except StdnumError as error:
        raise ValueError("is not a valid EU VAT identification number") from error


Iban = Annotated[str, Field(min_length=15, max_length=42), AfterValidator(_iban)]
"""An IBAN, checked by country format and checksum; stored without spaces."""
VatId = Annotated[str, Field(min_length=4, max_length=20), AfterValidator(_vat_id)]
"""An EU VAT identification number, checked by its country's checksum."""
CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$", examples=["DE"])]
"""ISO 3166-1 alpha-2 country code."""
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$", examples=["EUR"])]
"""ISO 4217 currency code."""
DocumentNumber = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9/_.-]{0,34}$")]
"""A document number: letters, digits and ``/ _ . -``, at most 35 characters (EN 16931)."""
Text = Annotated[str, Field(min_length=1, max_length=500)]
"""A non-empty line of free text."""
LongText = Annotated[str, Field(min_length=1, max_length=4000)]
"""A non-empty paragraph of free text."""
