"""Account statement (Kontoauszug): open items of a period with running balance and balance confirmation.

The opening balance and the signed entries come from the request; every running balance,
the period's debits and credits and the closing balance are computed here. A positive
balance is owed to the issuer ("in our favour"), a negative one to the customer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, model_validator

from postroom.documents.doctype import DocumentType
from postroom.documents.fields import Amount, CurrencyCode, DocumentNumber, IsoDate, LongText, Text
from postroom.documents.formatting import Formatter
from postroom.documents.letter import recipient_context, seller_context
from postroom.documents.parties import Seller, StrictModel
from postroom.documents.request import DocumentData, DocumentRequest, Period
from postroom.money import ZERO, round_money

EntryKind = Literal[
    "invoice",
    "credit_note",
    "payment",
    "refund",
    "credit",
    "fee",
    "interest",
    "adjustment",
    "write_off",
]
"""What an entry is; its amount is positive when it raises the customer's debt, negative when it lowers it."""

BalanceSide = Literal["ours", "yours", "settled"]
"""Who the balance favours: the issuer (the customer owes), the customer (we owe), or nobody."""


class StatementEntry(StrictModel):
    """One booking on the customer's account; ``amount`` is signed (positive raises the balance)."""

    date: IsoDate
    kind: EntryKind
    reference: str | None = Field(default=None, min_length=1, max_length=100)
    text: Text | None = None
    amount: Amount


@dataclass(frozen=True, slots=True)
class StatementLine:
    """An entry with the account balance after it."""

    entry: StatementEntry
    amount: Decimal
    balance: Decimal


@dataclass(frozen=True, slots=True)
class StatementBalances:
    """Computed balances of a statement: opening, per entry, the period's movements and closing."""

    opening: Decimal
    lines: tuple[StatementLine, ...]
    debits: Decimal
    credits: Decimal
    closing: Decimal

    @property
    def side(self) -> BalanceSide:
        """Who the closing balance favours."""
        if self.closing > 0:
            return "ours"
        if self.closing < 0:
            return "yours"
        return "settled"


def compute_balances(opening: Decimal, entries: list[StatementEntry]) -> StatementBalances:
    """Running balance after each entry (in date order, ties in given order) and the closing balance.

    ``debits`` is the sum of positive amounts, ``credits`` the sum of negative ones (a negative
    figure); opening + debits + credits = closing.
    """
    balance = round_money(opening)
    lines: list[StatementLine] = []
    for entry in sorted(entries, key=lambda item: item.date):
        amount = round_money(entry.amount)
        balance += amount
        lines.append(StatementLine(entry=entry, amount=amount, balance=balance))
    debits = sum((line.amount for line in lines if line.amount > 0), ZERO)
    credits = sum((line.amount for line in lines if line.amount < 0), ZERO)
    return StatementBalances(
        opening=round_money(opening), lines=tuple(lines), debits=debits, credits=credits, closing=balance
    )


class AccountStatementData(DocumentData):
    """The statement: period, opening balance and entries; balances are never given."""

    number: DocumentNumber
    issue_date: IsoDate
    seller: Seller
    currency: CurrencyCode = "EUR"
    period: Period
    opening_balance: Amount = Field(description="Balance at the start of the period; positive: owed to us.")
    entries: list[StatementEntry] = Field(default_factory=list, max_length=2000)
    request_confirmation: bool = Field(
        default=False,
        description="Attach a balance-confirmation slip (Saldenbestätigung) to sign and return.",
    )
    confirm_by: IsoDate | None = Field(
        default=None, description="Date by which the signed confirmation slip should be returned."
    )
    note: LongText | None = None

    @model_validator(mode="after")
    def _consistent(self) -> AccountStatementData:
        if self.period.end > self.issue_date:
            raise ValueError("period.end must not be after issue_date")
        for index, entry in enumerate(self.entries):
            if not self.period.start <= entry.date <= self.period.end:
                raise ValueError(f"entries.{index}.date must lie within period.start and period.end")
        if self.request_confirmation and self.confirm_by is None:
            raise ValueError("confirm_by is required when request_confirmation is true")
        if not self.request_confirmation and self.confirm_by is not None:
            raise ValueError("confirm_by is only allowed when request_confirmation is true")
        if self.confirm_by is not None and self.confirm_by < self.issue_date:
            raise ValueError("confirm_by must not be before issue_date")
        return self

    def balances(self) -> StatementBalances:
        """Running and closing balances, computed from the opening balance and the entries."""
        return compute_balances(self.opening_balance, self.entries)


class AccountStatementRequest(DocumentRequest):
    """``POST /v1/documents`` body for ``type: account_statement``."""

    type: Literal["account_statement"]
    data: AccountStatementData


def _period(fmt: Formatter, start: date, end: date) -> str:
    return f"{fmt.date(start)}\u00a0–\u00a0{fmt.date(end)}"


def account_statement_context(request: AccountStatementRequest) -> dict[str, Any]:
    """Everything the statement template prints, computed and formatted for the request's locale."""
    data = request.data
    fmt = Formatter(request.locale, data.currency)
    balances = data.balances()
    closing_abs = abs(balances.closing)
    confirmation = None
    if data.request_confirmation and data.confirm_by is not None:
        confirmation = {
            "confirm_by": fmt.date(data.confirm_by),
            "customer": request.recipient.name,
            "balance": fmt.money(closing_abs),
            "side": balances.side,
        }
    return {
        "lang": request.locale,
        "seller": seller_context(data.seller, fmt),
        "recipient": recipient_context(request.recipient, data.seller, fmt),
        "number": data.number,
        "issue_date": fmt.date(data.issue_date),
        "period": _period(fmt, data.period.start, data.period.end),
        "period_start": fmt.date(data.period.start),
        "period_end": fmt.date(data.period.end),
        "currency": data.currency,
        "opening_balance": fmt.amount(balances.opening),
        "entries": [
            {
                "date": fmt.date(line.entry.date),
                "kind": line.entry.kind,
                "reference": line.entry.reference,
                "text": line.entry.text,
                "amount": fmt.amount(line.amount),
                "balance": fmt.amount(line.balance),
            }
            for line in balances.lines
        ],
        "totals": {
            "opening": fmt.money(balances.opening),
            "debits": fmt.money(balances.debits),
            "credits": fmt.money(balances.credits),
            "closing": fmt.money(balances.closing),
            "closing_abs": fmt.money(closing_abs),
        },
        "closing_balance": fmt.amount(balances.closing),
        "balance_side": balances.side,
        "confirmation": confirmation,
        "note": data.note,
    }


DOCUMENT_TYPE = DocumentType(
    name="account_statement",
    request_model=AccountStatementRequest,
    build_context=account_statement_context,
    titles={"de": "Kontoauszug", "en": "Statement of account"},
    retention="letter",
    template="account_statement",
)
