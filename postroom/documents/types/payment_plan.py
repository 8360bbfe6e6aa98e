"""Payment plan (Ratenvereinbarung): claims less a down payment, paid in equal instalments.

Every figure is computed here: the claims' total, the amount financed (total less down
payment), the regular instalment (financed / n, rounded half-up to the cent) and the last
instalment, which absorbs the rounding difference so the schedule sums exactly to the
amount financed. Due dates run from ``first_due_date`` every ``interval_months`` months,
the day clamped to the month's end (31 Jan → 28/29 Feb → 31 Mar).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from postroom.documents.doctype import DocumentType
from postroom.documents.fields import Amount, CurrencyCode, DocumentNumber, IsoDate, LongText, Text
from postroom.documents.formatting import Formatter
from postroom.documents.letter import recipient_context, seller_context
from postroom.documents.parties import Seller, StrictModel
from postroom.documents.request import DocumentData, DocumentRequest
from postroom.documents.schedule import monthly_dates
from postroom.money import ZERO, round_money

MAX_INSTALLMENTS = 120


class Claim(StrictModel):
    """One claim the plan settles: an invoice, interest, costs; the amount is positive."""

    reference: Text
    amount: Amount

    @field_validator("amount")
    @classmethod
    def _positive(cls, amount: Decimal) -> Decimal:
        if amount <= 0:
            raise ValueError("a claim amount must be positive")
        return amount


@dataclass(frozen=True, slots=True)
class Installment:
    """One instalment: its number (from 1), due date, amount and what remains open after it."""

    number: int
    due_date: date
    amount: Decimal
    remaining: Decimal


@dataclass(frozen=True, slots=True)
class PaymentSchedule:
    """The computed plan: claims' total, down payment, amount financed and the instalments."""

    claims_total: Decimal
    down_payment: Decimal
    financed: Decimal
    regular: Decimal
    installments: tuple[Installment, ...]

    @property
    def last(self) -> Decimal:
        """The last instalment (the regular one plus or minus the rounding difference)."""
        return self.installments[-1].amount

    @property
    def total(self) -> Decimal:
        """Sum of all instalments; equals :attr:`financed` by construction."""
        return sum((item.amount for item in self.installments), ZERO)


def split_installments(financed: Decimal, count: int) -> list[Decimal]:
    """``count`` instalments of ``financed / count`` rounded half-up; the last absorbs the difference.

    The result always sums to exactly ``financed`` (rounded to the cent).
    """
    if count < 1:
        raise ValueError("installments must be at least 1")
    financed = round_money(financed)
    regular = round_money(financed / count)
    return [regular] * (count - 1) + [financed - regular * (count - 1)]


def compute_schedule(
    claims: list[Decimal],
    down_payment: Decimal,
    count: int,
    first_due_date: date,
    interval_months: int,
) -> PaymentSchedule:
    """The instalment schedule for ``claims`` less ``down_payment`` in ``count`` instalments."""
    claims_total = sum((round_money(amount) for amount in claims), ZERO)
    down = round_money(down_payment)
    financed = claims_total - down
    amounts = split_installments(financed, count)
    remaining = financed
    installments: list[Installment] = []
    for number, (amount, due) in enumerate(
        zip(amounts, monthly_dates(first_due_date, count, interval_months), strict=True), start=1
    ):
        remaining -= amount
        installments.append(Installment(number=number, due_date=due, amount=amount, remaining=remaining))
    return PaymentSchedule(
        claims_total=claims_total,
        down_payment=down,
        financed=financed,
        regular=amounts[0],
        installments=tuple(installments),
    )


class PaymentPlanData(DocumentData):
    """The plan: claims, down payment, number and rhythm of instalments, terms. No totals are given."""

    number: DocumentNumber
    issue_date: IsoDate
    seller: Seller
    currency: CurrencyCode = "EUR"
    claims: list[Claim] = Field(min_length=1, max_length=200)
    down_payment: Amount = Field(default=Decimal("0.00"), description="Paid before the instalments.")
    down_payment_due_date: IsoDate | None = Field(
        default=None, description="When the down payment is due; on conclusion of the agreement when omitted."
    )
    installments: int = Field(ge=1, le=MAX_INSTALLMENTS, description="Number of instalments.")
    first_due_date: IsoDate
    interval_months: int = Field(default=1, ge=1, le=12, description="Months between two instalments.")
    terms: list[LongText] = Field(default_factory=list, max_length=20)
    signature_required: bool = Field(default=False, description="Print a signature block for both parties.")
    note: LongText | None = None

    @field_validator("down_payment")
    @classmethod
    def _not_negative(cls, amount: Decimal) -> Decimal:
        if amount < 0:
            raise ValueError("down_payment must not be negative")
        return amount

    @model_validator(mode="after")
    def _consistent(self) -> PaymentPlanData:
        total = sum((claim.amount for claim in self.claims), ZERO)
        if self.down_payment > total:
            raise ValueError("down_payment must not exceed the total of claims")
        if self.down_payment == total:
            raise ValueError("down_payment covers every claim: nothing is left for installments")
        if self.first_due_date < self.issue_date:
            raise ValueError("first_due_date must not be before issue_date")
        if self.down_payment_due_date is not None:
            if self.down_payment == 0:
                raise ValueError("down_payment_due_date needs a down_payment")
            if self.down_payment_due_date < self.issue_date:
                raise ValueError("down_payment_due_date must not be before issue_date")
            if self.down_payment_due_date > self.first_due_date:
                raise ValueError("down_payment_due_date must not be after first_due_date")
        if min(split_installments(total - self.down_payment, self.installments)) <= 0:
            raise ValueError(
                "installments: too many for the amount to pay, an instalment would be 0.00 or less"
            )
        return self

    def schedule(self) -> PaymentSchedule:
        """The instalment schedule, computed from the claims, down payment and dates."""
        return compute_schedule(
            [claim.amount for claim in self.claims],
            self.down_payment,
            self.installments,
            self.first_due_date,
            self.interval_months,
        )


class PaymentPlanRequest(DocumentRequest):
    """``POST /v1/documents`` body for ``type: payment_plan``."""

    type: Literal["payment_plan"]
    data: PaymentPlanData


def payment_plan_context(request: PaymentPlanRequest) -> dict[str, Any]:
    """Everything the payment-plan template prints, computed and formatted for the request's locale."""
    data = request.data
    fmt = Formatter(request.locale, data.currency)
    plan = data.schedule()
    has_down_payment = plan.down_payment > 0
    return {
        "lang": request.locale,
        "seller": seller_context(data.seller, fmt),
        "recipient": recipient_context(request.recipient, data.seller, fmt),
        "debtor": request.recipient.name,
        "number": data.number,
        "issue_date": fmt.date(data.issue_date),
        "currency": data.currency,
        "claims": [
            {"reference": claim.reference, "amount": fmt.money(claim.amount)} for claim in data.claims
        ],
        "claims_total": fmt.money(plan.claims_total),
        "down_payment": fmt.money(plan.down_payment) if has_down_payment else None,
        "down_payment_due_date": (
            fmt.date(data.down_payment_due_date) if data.down_payment_due_date else None
        ),
        "financed": fmt.money(plan.financed),
        "installment_count": str(len(plan.installments)),
        "interval_months": data.interval_months,
        "interval": str(data.interval_months),
        "regular_installment": fmt.money(plan.regular),
        "regular_count": str(len(plan.installments) - 1),
        "last_installment": fmt.money(plan.last),
        "last_differs": plan.last != plan.regular,
        "first_due_date": fmt.date(plan.installments[0].due_date),
        "last_due_date": fmt.date(plan.installments[-1].due_date),
        "schedule": [
            {
                "number": str(item.number),
                "due_date": fmt.date(item.due_date),
                "amount": fmt.money(item.amount),
                "remaining": fmt.money(item.remaining),
            }
            for item in plan.installments
        ],
        "schedule_total": fmt.money(plan.total),
        "terms": list(data.terms),
        "signature_required": data.signature_required,
        "note": data.note,
    }


DOCUMENT_TYPE = DocumentType(
    name="payment_plan",
    request_model=PaymentPlanRequest,
    build_context=payment_plan_context,
    titles={"de": "Ratenvereinbarung", "en": "Payment plan"},
    retention="letter",
    template="payment_plan",
)
