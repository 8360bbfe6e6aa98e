"""``/v1/collection-cases``: hand-off to a collection agency, its payments, actions and closing."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from postroom.api.auth import require
from postroom.api.core_calls import HistoryEntry, business_day, enqueue, history_view, runtime_of
from postroom.api.problems import ProblemError
from postroom.core.billing import collection
from postroom.core.billing.models import CollectionCase
from postroom.documents.fields import Amount, IsoDate
from postroom.documents.parties import StrictModel
from postroom.settings import ApiKey

router = APIRouter(prefix="/v1/collection-cases", tags=["core"])


class HandOver(StrictModel):
    """Items of one customer to hand to a configured agency."""

    invoice_ids: list[uuid.UUID] = Field(min_length=1, max_length=100)
    agency: str = Field(min_length=1, max_length=40)
    as_of: IsoDate | None = Field(default=None, description="The hand-off date; today when omitted.")


class CaseView(BaseModel):
    """A collection case; the debtor by pseudonymous party id."""

    id: uuid.UUID
    party_id: uuid.UUID
    number: str
    agency: str
    status: str
    opened_on: date
    principal: Decimal
    charges: Decimal
    costs: Decimal
    received: Decimal
    notice_document_id: uuid.UUID | None
    export_sha256: str | None
    closed_on: date | None


class AgencyPayment(StrictModel):
    """Money the agency forwarded and the costs it charged (owed by the debtor)."""

    amount: Amount = Decimal("0.00")
    costs: Amount = Decimal("0.00")
    booking_date: IsoDate
    reference: str = Field(min_length=1, max_length=60, pattern=r"^[A-Za-z0-9][A-Za-z0-9/_.:-]*$")


class Action(StrictModel):
    """One of the policy's collection actions."""

    action: str = Field(min_length=1, max_length=200)
    note: str | None = Field(default=None, max_length=500)


class Closing(StrictModel):
    """How the case ends."""

    outcome: Literal["paid", "settled", "written_off"]
    as_of: IsoDate | None = None
    reason: str | None = Field(default=None, max_length=500)


def _case(session: Session, case_id: uuid.UUID, lock: bool = False) -> CollectionCase:
    case = session.get(CollectionCase, case_id, with_for_update=lock)
    if case is None:
        raise ProblemError(404, "Not found", f"no collection case {case_id}", slug="not-found")
    return case


def _view(case: CollectionCase) -> CaseView:
    return CaseView.model_validate(case, from_attributes=True)


@router.post("", response_model=CaseView, status_code=201)
def hand_over(
    request: Request, body: HandOver, key: Annotated[ApiKey, Depends(require("core:write"))]
) -> CaseView:
    """Hand items to collection once the preconditions hold (409 naming each failing item otherwise)."""
    rt = runtime_of(request)
    with rt.db.session() as session:
        case, outbox = collection.hand_over(
            session,
            rt.settings,
            invoice_ids=body.invoice_ids,
            agency_key=body.agency,
            as_of=body.as_of or business_day(rt),
            actor=key.id,
        )
        view = _view(case)
    enqueue(request, outbox)
    return view


@router.get("/{case_id}", response_model=CaseView)
def get_case(
    request: Request, case_id: uuid.UUID, _: Annotated[ApiKey, Depends(require("core:read"))]
) -> CaseView:
    """One case and its figures."""
    with runtime_of(request).db.session() as session:
        return _view(_case(session, case_id))


@router.get("/{case_id}/export")
def get_export(
    request: Request, case_id: uuid.UUID, _: Annotated[ApiKey, Depends(require("core:read"))]
) -> FileResponse:
    """The export file handed to the agency (CSV)."""
    with runtime_of(request).db.session() as session:
        case = _case(session, case_id)
        if case.export_file is None or not Path(case.export_file).is_file():
            raise ProblemError(404, "Not found", f"no export file for case {case.number}", slug="not-found")
        return FileResponse(case.export_file, media_type="text/csv", filename=f"{case.number}.csv")


@router.post("/{case_id}/payments", response_model=CaseView)
def agency_payment(
    request: Request,
    case_id: uuid.UUID,
    body: AgencyPayment,
    key: Annotated[ApiKey, Depends(require("core:write"))],
) -> CaseView:
    """Record the agency's payment and costs (once per ``reference``)."""
    rt = runtime_of(request)
    with rt.db.session() as session:
        case = _case(session, case_id, lock=True)
        collection.record_agency_payment(
            session,
            rt.settings,
            case,
            amount=body.amount,
            costs=body.costs,
            booking_date=body.booking_date,
            reference=body.reference,
            actor=key.id,
        )
        return _view(case)


@router.post("/{case_id}/actions", response_model=list[HistoryEntry])
def choose_action(
    request: Request, case_id: uuid.UUID, body: Action, key: Annotated[ApiKey, Depends(require("core:write"))]
) -> list[HistoryEntry]:
    """Record an action from the policy's list; answers the case's history."""
    rt = runtime_of(request)
    with rt.db.session() as session:
        case = _case(session, case_id, lock=True)
        collection.choose_action(session, rt.settings, case, body.action, actor=key.id, note=body.note)
        session.flush()
        return history_view(session, "collection", case.id)


@router.post("/{case_id}/close", response_model=CaseView)
def close_case(
    request: Request,
    case_id: uuid.UUID,
    body: Closing,
    key: Annotated[ApiKey, Depends(require("core:write"))],
) -> CaseView:
    """Close as paid (nothing open), settled or written off (the rest is written off)."""
    rt = runtime_of(request)
    with rt.db.session() as session:
        case = _case(session, case_id, lock=True)
        collection.close(
            session,
            rt.settings,
            case,
            body.outcome,
            as_of=body.as_of or business_day(rt),
            actor=key.id,
            reason=body.reason,
        )
        return _view(case)


@router.get("/{case_id}/history", response_model=list[HistoryEntry])
def case_history(
    request: Request, case_id: uuid.UUID, _: Annotated[ApiKey, Depends(require("core:read"))]
) -> list[HistoryEntry]:
    """Every step of the case."""
    with runtime_of(request).db.session() as session:
        _case(session, case_id)
        return history_view(session, "collection", case_id)
