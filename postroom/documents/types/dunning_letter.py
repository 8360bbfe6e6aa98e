"""Dunning letter (Zahlungserinnerung, Mahnung, letzte Mahnung): open items, default interest and fees.

Levels: 0 payment reminder (friendly), 1 first and 2 second reminder, 3 final notice that
announces the hand-off to a collection agency or legal action. Every figure printed (open
amounts, interest per item, totals) is computed here from the items; nothing is copied.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, model_validator

from postroom.documents.doctype import DocumentType
from postroom.documents.fields import Amount, CurrencyCode, DocumentNumber, IsoDate, Text
from postroom.documents.formatting import Formatter
from postroom.documents.interest import DebtorKind, ItemInterest, base_rate_table, statutory_interest
from postroom.documents.letter import recipient_context, seller_context
from postroom.documents.parties import Recipient, Seller, StrictModel
from postroom.documents.payment_qr import epc_qr_svg
from postroom.documents.request import DocumentData, DocumentRequest
from postroom.money import ZERO

FLAT_RATE = Decimal("40.00")
"""The flat sum of §288(5) BGB a business debtor in default owes (in euro)."""

InterestMode = Literal["statutory", "none"]
DunningLevel = Literal[0, 1, 2, 3]

# Descriptions that name the §288(5) BGB flat sum, for fees given without ``kind``.
_FLAT_RATE_WORDS = re.compile(
    r"§\s*288\s*(Abs\.?\s*5|\(5\))|Verzugs(kosten)?pauschale|flat[- ]rate|late[- ]payment (fee|compensation)",
    re.IGNORECASE,
)
_EPC_TEXT_LIMIT = 140


class OpenItem(StrictModel):
    """An unpaid or partly paid invoice; the open amount is ``amount`` − ``paid``."""

    invoice_number: DocumentNumber
    invoice_date: IsoDate
    due_date: IsoDate
    default_since: IsoDate | None = Field(
        default=None,
        description="First day of default (§286 BGB); interest accrues from this day. "
        "Omitted while the item is not in default.",
    )
    amount: Amount = Field(description="Gross amount of the invoice.")
    paid: Amount = Field(default=Decimal("0.00"), description="Sum of payments received so far.")

    @model_validator(mode="after")
    def _consistent(self) -> OpenItem:
        if self.amount <= 0:
            raise ValueError("amount must be positive")
        if self.paid < 0:
            raise ValueError("paid must not be negative")
        if self.paid >= self.amount:
            raise ValueError("paid must be less than amount: a settled item is not open")
        if self.due_date < self.invoice_date:
            raise ValueError("due_date must not be before invoice_date")
        if self.default_since is not None and self.default_since <= self.due_date:
            raise ValueError("default_since must be after due_date (§286 BGB)")
        return self

    @property
    def open_amount(self) -> Decimal:
        """What is still owed on the invoice."""
        return self.amount - self.paid

    def in_default_on(self, day: date) -> bool:
        """Whether the debtor is in default with this item on ``day``."""
        return self.default_since is not None and self.default_since <= day


class Reminder(StrictModel):
    """A reminder sent earlier: its level and date."""

    level: DunningLevel
    date: IsoDate


class PreviousReminder(Reminder):
    """A reminder sent before this letter."""

    flat_rate_charged: bool = Field(
        default=False, description="That reminder already charged the flat sum of §288(5) BGB."
    )


class Fee(StrictModel):
    """A cost charged with the reminder.

    ``kind`` ``flat_rate`` is the €40 of §288(5) BGB, ``costs`` the actual costs of the
    reminder. Without ``kind`` a description naming §288(5) or a "Verzugspauschale" /
    "flat rate" marks the flat sum, anything else is costs.
    """

    description: Text
    amount: Amount
    kind: Literal["flat_rate", "costs"] | None = None

    @model_validator(mode="after")
    def _positive(self) -> Fee:
        if self.amount <= 0:
            raise ValueError("a fee amount must be positive")
        return self

    @property
    def is_flat_rate(self) -> bool:
        """This fee is the flat sum of §288(5) BGB."""
        if self.kind is not None:
            return self.kind == "flat_rate"
        return _FLAT_RATE_WORDS.search(self.description) is not None


class DunningData(DocumentData):
    """A reminder about open items.

    Validation, beyond the field types:

    * ``pay_by`` lies after ``issue_date``; ``key_date`` (the Stichtag up to which
      interest is computed, the issue date when omitted) not after it.
    * ``items`` name each invoice once; with statutory interest no ``default_since`` may
      lie before the base-rate table.
    * ``previous_reminders`` are dated before ``issue_date``; from level 2 on, one of them
      has at least the level below (the level rises at most one step per run, so a final
      notice follows a second reminder).
    * Fees need default: a reminder none of whose items is in default on its issue date is
      the reminder that first puts the debtor in default (§286(1) BGB, on receipt). Its
      costs arise before default and are no damage caused by default (§§280(2), 286 BGB),
      and the §288(5) flat sum presupposes default, so such a reminder (typically level 0)
      must be free of charge: ``fees`` empty.
    * The flat sum (§288(5) BGB) is exactly €40, in euro, charged at most once: once in
      ``fees`` and not when a previous reminder already charged it. That only business
      debtors owe it is checked against ``recipient.kind`` by the request.
    """

    number: DocumentNumber
    issue_date: IsoDate
    key_date: IsoDate | None = Field(
        default=None,
        description="Stichtag: interest runs up to this day (inclusive); the issue date when omitted.",
    )
    level: DunningLevel = Field(description="0 payment reminder, 1 and 2 reminders, 3 final notice.")
    currency: CurrencyCode = "EUR"
    seller: Seller
    items: list[OpenItem] = Field(min_length=1, max_length=500)
    interest: InterestMode = Field(
        default="none",
        description="statutory: §288 BGB interest, base rate + 5 (consumer) or + 9 points (business).",
    )
    fees: list[Fee] = Field(default_factory=list, max_length=20)
    pay_by: IsoDate = Field(description="Payment deadline; after the issue date.")
    previous_reminders: list[PreviousReminder] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _rules(self) -> DunningData:
        if self.pay_by <= self.issue_date:
            raise ValueError("data.pay_by must be after data.issue_date")
        if self.key_date is not None and self.key_date > self.issue_date:
            raise ValueError("data.key_date must not be after data.issue_date")
        check_items(self.items, self.interest)
        self._check_previous_reminders()
        self._check_fees()
        return self

    def _check_previous_reminders(self) -> None:
        if any(reminder.date >= self.issue_date for reminder in self.previous_reminders):
            raise ValueError("data.previous_reminders must be dated before data.issue_date")
        if self.level >= 2 and not any(r.level >= self.level - 1 for r in self.previous_reminders):
            raise ValueError(
                f"data.previous_reminders: a level-{self.level} reminder follows one of level "
                f"{self.level - 1} at least (the level rises one step at a time)"
            )

    def _check_fees(self) -> None:
        if self.fees and not any(item.in_default_on(self.issue_date) for item in self.items):
            raise ValueError(
                "data.fees must be empty: no item is in default on data.issue_date "
                "(data.items[].default_since), so this reminder first puts the debtor in default "
                "and is free of charge"
            )
        flat = [fee for fee in self.fees if fee.is_flat_rate]
        if len(flat) > 1 or (flat and any(r.flat_rate_charged for r in self.previous_reminders)):
            raise ValueError(
                "data.fees: the flat sum of §288(5) BGB is owed only once "
                "(charged twice, or already by data.previous_reminders)"
            )
        if flat and (flat[0].amount != FLAT_RATE or self.currency != "EUR"):
            raise ValueError("data.fees: the flat sum of §288(5) BGB is exactly 40.00 EUR")

    @property
    def interest_until(self) -> date:
        """The key date up to which interest is computed."""
        return self.key_date or self.issue_date

    @property
    def charges_flat_rate(self) -> bool:
        """One of the fees is the §288(5) flat sum."""
        return any(fee.is_flat_rate for fee in self.fees)


def check_items(items: list[OpenItem], interest: InterestMode, field: str = "data.items") -> None:
    """Each invoice once; with statutory interest, default dates the base-rate table covers.

    ``field`` names the list in error messages.
    """
    numbers = [item.invoice_number for item in items]
    if len(set(numbers)) != len(numbers):
        raise ValueError(f"{field}: an invoice_number appears twice")
    if interest == "statutory":
        first = base_rate_table().first_day
        for index, item in enumerate(items):
            if item.default_since is not None and item.default_since < first:
                raise ValueError(
                    f"{field}[{index}].default_since lies before the base-rate table ({first.isoformat()})"
                )


def debtor_kind(recipient: Recipient, interest: InterestMode) -> DebtorKind | None:
    """The debtor kind statutory interest needs, from ``recipient.kind``; ``None`` without interest."""
    if interest != "statutory":
        return None
    if recipient.kind == "internal":
        raise ValueError("data.interest 'statutory' needs recipient.kind 'consumer' or 'business'")
    return recipient.kind


class DunningRequest(DocumentRequest):
    """``POST /v1/documents`` body for ``type: dunning_letter``."""

    type: Literal["dunning_letter"]
    data: DunningData

    @model_validator(mode="after")
    def _recipient_rules(self) -> DunningRequest:
        debtor_kind(self.recipient, self.data.interest)
        if self.data.charges_flat_rate and self.recipient.kind != "business":
            raise ValueError(
                "data.fees: the flat sum of §288(5) BGB is owed by business debtors only (recipient.kind)"
            )
        return self


@dataclass(frozen=True, slots=True)
class ClaimTotals:
    """Computed sums of a set of open items, their interest and fees."""

    interest: tuple[ItemInterest | None, ...]
    principal: Decimal
    interest_total: Decimal
    fees: Decimal
    total: Decimal


def claim_totals(
    items: list[OpenItem], key_date: date, debtor: DebtorKind | None, fees: list[Fee] | None = None
) -> ClaimTotals:
    """Open principal, interest per item up to ``key_date`` (none without ``debtor``), fees and total due."""
    interest = tuple(
        statutory_interest(item.open_amount, item.default_since, key_date, debtor) if debtor else None
        for item in items
    )
    principal = sum((item.open_amount for item in items), ZERO)
    interest_total = sum((entry.interest for entry in interest if entry is not None), ZERO)
    fee_total = sum((fee.amount for fee in fees or []), ZERO)
    return ClaimTotals(
        interest=interest,
        principal=principal,
        interest_total=interest_total,
        fees=fee_total,
        total=principal + interest_total + fee_total,
    )


def dunning_totals(request: DunningRequest) -> ClaimTotals:
    """The figures of a dunning letter."""
    data = request.data
    debtor = debtor_kind(request.recipient, data.interest)
    return claim_totals(data.items, data.interest_until, debtor, data.fees)


def item_rows(items: list[OpenItem], totals: ClaimTotals, fmt: Formatter) -> list[dict[str, Any]]:
    """The items as the templates print them, with the interest segments ("68 days at 10.27 %")."""
    rows = []
    for item, interest in zip(items, totals.interest, strict=True):
        rows.append(
            {
                "invoice_number": item.invoice_number,
                "invoice_date": fmt.date(item.invoice_date),
                "due_date": fmt.date(item.due_date),
                "default_since": fmt.date(item.default_since) if item.default_since else None,
                "amount": fmt.amount(item.amount),
                "paid": fmt.amount(item.paid) if item.paid else None,
                "open": fmt.amount(item.open_amount),
                "interest": fmt.amount(interest.interest) if interest is not None else None,
                "days": interest.days if interest is not None else None,
                "segments": [
                    {
                        "days": segment.days,
                        "rate": fmt.percent(segment.rate),
                        "start": fmt.date(segment.start),
                        "end": fmt.date(segment.end),
                    }
                    for segment in (interest.segments if interest is not None else ())
                ],
            }
        )
    return rows


def interest_context(debtor: DebtorKind | None, key_date: date, fmt: Formatter) -> dict[str, Any] | None:
    """How the interest was computed, for the explanatory note; ``None`` without interest."""
    if debtor is None:
        return None
    return {
        "debtor": debtor,
        "points": "9" if debtor == "business" else "5",
        "paragraph": "2" if debtor == "business" else "1",
        "key_date": fmt.date(key_date),
    }


def payment_reference(number: str, invoice_numbers: list[str]) -> str:
    """The letter number and the invoice numbers, or the letter number alone when they exceed 140 characters.

    140 characters is the EPC remittance text's limit; a partial list of invoices would mislead.
    """
    reference = " ".join([number, *invoice_numbers])
    return reference if len(reference) <= _EPC_TEXT_LIMIT else number


def dunning_context(request: DunningRequest) -> dict[str, Any]:
    """Everything the dunning letter prints, formatted for the request's locale."""
    data = request.data
    fmt = Formatter(request.locale, data.currency)
    debtor = debtor_kind(request.recipient, data.interest)
    totals = dunning_totals(request)
    reference = payment_reference(data.number, [item.invoice_number for item in data.items])
    seller = data.seller
    qr = None
    if seller.iban is not None:
        qr = epc_qr_svg(
            name=seller.name,
            iban=seller.iban,
            bic=seller.bic,
            amount=totals.total,
            reference=reference,
            currency=data.currency,
        )
    return {
        "lang": request.locale,
        "seller": seller_context(seller, fmt),
        "recipient": recipient_context(request.recipient, seller, fmt),
        "number": data.number,
        "level": data.level,
        "in_default": any(item.in_default_on(data.issue_date) for item in data.items),
        "issue_date": fmt.date(data.issue_date),
        "key_date": fmt.date(data.interest_until),
        "pay_by": fmt.date(data.pay_by),
        "currency": data.currency,
        "items": item_rows(data.items, totals, fmt),
        "interest": interest_context(debtor, data.interest_until, fmt),
        "fees": [
            {"description": fee.description, "amount": fmt.money(fee.amount), "flat_rate": fee.is_flat_rate}
            for fee in data.fees
        ],
        "totals": {
            "principal": fmt.money(totals.principal),
            "interest": fmt.money(totals.interest_total) if debtor else None,
            "fees": fmt.money(totals.fees) if data.fees else None,
            "total": fmt.money(totals.total),
        },
        "previous_reminders": [
            {"level": reminder.level, "date": fmt.date(reminder.date)}
            for reminder in sorted(data.previous_reminders, key=lambda r: r.date)
        ],
        "payment_reference": reference,
        "payment_qr": qr,
    }


DOCUMENT_TYPE = DocumentType(
    name="dunning_letter",
    request_model=DunningRequest,
    build_context=dunning_context,
    titles={"de": "Mahnung", "en": "Payment reminder"},
    retention="letter",
    template="dunning_letter",
)
