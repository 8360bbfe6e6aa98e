"""``/auditor``: server-rendered pages for tax auditors over the archive API's building blocks.

An auditor signs in with an API key holding ``archive:read`` (or ``admin``). The session cookie
holds ``key_id|expires_epoch|hmac`` with the HMAC keyed by the key's digest: never the key
itself, no extra secret to manage, and removing or rotating the key ends every session of it.
Forms that change something carry a CSRF token derived from the session cookie (the login form,
before a session exists, a random token in a cookie of its own). Searches, reads, verifications
and downloads are chained into the event log exactly as the JSON API chains them, with the
key's id; a key restricted by ``ArchiveRestriction`` sees nothing outside its part here either.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import select

from postroom.api.problems import ProblemError
from postroom.api.routes.archive import (
    ArchiveEntryView,
    ExportView,
    download_export,
    download_pdf,
    download_xml,
    log_access,
    vars_of,
    visible_entry,
)
from postroom.core import archive_index
from postroom.core.archive_index import AccessLimits, ArchiveFilter, InvalidCursor
from postroom.core.archive_verification import verify_entry
from postroom.core.models import ArchiveExport
from postroom.documents.catalogue import CATALOGUE
from postroom.jobs import archive_exports
from postroom.log import get_logger
from postroom.runtime import Runtime
from postroom.settings import ApiKey, Settings

log = get_logger(__name__)

PREFIX = "/auditor"
LOGIN_PATH = f"{PREFIX}/login"
SESSION_COOKIE = "postroom_auditor"
LOGIN_CSRF_COOKIE = "postroom_auditor_login"
SESSION_SECONDS = 8 * 3600
PAGE_SIZE = 50
EXPORTS_SHOWN = 100
MAX_FORM_BYTES = 8192
SEARCH_FIELDS = (
    "number",
    "type",
    "issued_from",
    "issued_to",
    "customer_id",
    "order_reference",
    "amount_min",
    "amount_max",
)
REFUSED = "This API key is unknown or may not read the archive."
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
_SAFE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
_LABELS = {
    "id": "Document id",
    "document_type": "Document type",
    "customer_id": "Customer id",
    "sha256": "SHA-256 (recorded)",
    "size_bytes": "Size (bytes)",
    "has_einvoice": "E-invoice XML embedded",
    "retain_until": "Retain until (index)",
    "archived_at": "Archived at",
}


def _when(value: datetime | date | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    return value.isoformat()


def _money(value: Decimal | None) -> str:
    return "—" if value is None else f"{value:,.2f}"


templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    # .html.j2 named explicitly, and everything else escaped too: nothing renders unescaped.
    autoescape=select_autoescape(("html.j2", "html"), default_for_string=True, default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.globals["base"] = PREFIX
templates.filters["when"] = _when
templates.filters["money"] = _money


class LoginRequired(Exception):
    """No valid session: the page answers with a redirect to the login form."""


class _AuditorRoute(APIRoute):
    """Answers this router's errors as pages instead of problem documents, and sets the security
    headers every answer of it carries."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The route's handler, wrapped."""
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                response = await handler(request)
            except LoginRequired:
                response = RedirectResponse(LOGIN_PATH, status_code=303)
            except ProblemError as error:
                problem = error.problem
                response = _error_page(request, problem.status, problem.title, problem.detail)
            except RequestValidationError:
                response = _error_page(request, 404, "Not found", "there is no such page")
            response.headers.update(_SAFE_HEADERS)
            if response.media_type == "text/html":
                response.headers["Content-Security-Policy"] = CSP
            return response

        return guarded


router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=_AuditorRoute)


@dataclass(frozen=True, slots=True)
class SignedIn:
    """An auditor's valid session: the key and the CSRF token its forms carry."""

    key: ApiKey
    csrf: str


def _runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def _mac(key: ApiKey, purpose: str, message: str) -> str:
    return hmac.new(key.digest.encode(), f"{purpose}|{message}".encode(), hashlib.sha256).hexdigest()


def may_audit(key: ApiKey) -> bool:
    """Whether ``key`` may use these pages."""
    return "archive:read" in key.scopes or "admin" in key.scopes


def session_cookie(key: ApiKey, now: float | None = None) -> str:
    """The value of a new session cookie for ``key``: ``key_id|expires_epoch|hmac``."""
    expires = int(now if now is not None else time.time()) + SESSION_SECONDS
    return f"{key.id}|{expires}|{_mac(key, 'session', f'{key.id}|{expires}')}"


def session_key(settings: Settings, cookie: str | None, now: float | None = None) -> ApiKey | None:
    """The key of a session cookie that is intact, unexpired and of a key still configured and
    allowed to audit; ``None`` otherwise."""
    if not cookie:
        return None
    parts = cookie.split("|")
    if len(parts) != 3:
        return None
    key_id, expires, mac = parts
    if not (expires.isascii() and expires.isdigit() and len(expires) <= 12):
        return None
    if int(expires) <= (now if now is not None else time.time()):
        return None
    key = settings.api_key_by_id(key_id)
    if key is None or not may_audit(key):
        return None
    if not hmac.compare_digest(mac, _mac(key, "session", f"{key_id}|{expires}")):
        return None
    return key


def _current(request: Request) -> SignedIn | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    key = session_key(_runtime(request).settings, cookie)
    if key is None or cookie is None:
        return None
    return SignedIn(key, _mac(key, "csrf", cookie))


def signed_in(request: Request) -> SignedIn:
    """Dependency: the valid session of this request, else :class:`LoginRequired`."""
    current = _current(request)
    if current is None:
        raise LoginRequired
    return current


Auditor = Annotated[SignedIn, Depends(signed_in)]


async def form_fields(request: Request) -> dict[str, str]:
    """Dependency: the fields of a URL-encoded form (the last value of a repeated name)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        raise ProblemError(415, "Unsupported form", "expected a URL-encoded form")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise ProblemError(413, "Form too large", f"a form holds at most {MAX_FORM_BYTES} bytes")
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=20)
    return {name: values[-1] for name, values in parsed.items()}


Form = Annotated[dict[str, str], Depends(form_fields)]


def checked_form(current: Auditor, fields: Form) -> dict[str, str]:
    """Dependency: the form's fields once its CSRF token matches the session's."""
    if not hmac.compare_digest(fields.get("csrf", ""), current.csrf):
        raise ProblemError(403, "Forbidden", "the form has expired: reload the page and send it again")
    return fields


CheckedForm = Annotated[dict[str, str], Depends(checked_form)]


def _page(template: str, status: int = 200, *, current: SignedIn | None, **context: Any) -> HTMLResponse:
    html = templates.get_template(template).render(signed_in=current, **context)
    return HTMLResponse(html, status_code=status)


def _error_page(request: Request, status: int, title: str, detail: str | None) -> HTMLResponse:
    return _page("error.html.j2", status, current=_current(request), title=title, detail=detail)


def _set_cookie(
    request: Request, response: Response, name: str, value: str | None, path: str, age: int
) -> None:
    """Set (or with ``value`` ``None`` clear) an HttpOnly, SameSite=Strict cookie, Secure over https."""
    secure = request.url.scheme == "https"
    if value is None:
        response.delete_cookie(name, path=path, secure=secure, httponly=True, samesite="strict")
    else:
        response.set_cookie(
            name, value, max_age=age, path=path, secure=secure, httponly=True, samesite="strict"
        )


def _login_page(request: Request, status: int = 200, error: str | None = None) -> HTMLResponse:
    token = secrets.token_urlsafe(32)
    response = _page("login.html.j2", status, current=None, csrf=token, error=error)
    _set_cookie(request, response, LOGIN_CSRF_COOKIE, token, LOGIN_PATH, 3600)
    return response


@router.get("/login")
def login_form(request: Request) -> Response:
    """The login form (or the search page, when already signed in)."""
    if _current(request) is not None:
        return RedirectResponse(PREFIX, status_code=303)
    return _login_page(request)


@router.post("/login")
def login(request: Request, fields: Form) -> Response:
    """Sign in with an API key holding ``archive:read`` or ``admin``."""
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(fields.get("csrf", ""), expected):
        return _login_page(request, 403, "The login form has expired. Please try again.")
    key = _runtime(request).settings.api_key_for(fields.get("api_key", "").strip())
    if key is None or not may_audit(key):
        log.warning("auditor login refused", key_id=key.id if key is not None else None)
        return _login_page(request, 401, REFUSED)
    log.info("auditor signed in", key_id=key.id)
    response = RedirectResponse(PREFIX, status_code=303)
    _set_cookie(request, response, SESSION_COOKIE, session_cookie(key), PREFIX, SESSION_SECONDS)
    _set_cookie(request, response, LOGIN_CSRF_COOKIE, None, LOGIN_PATH, 0)
    return response


@router.post("/logout")
def logout(request: Request, current: Auditor, _csrf_checked: CheckedForm) -> Response:
    """End the session in this browser."""
    log.info("auditor signed out", key_id=current.key.id)
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    _set_cookie(request, response, SESSION_COOKIE, None, PREFIX, 0)
    return response


def _optional(text: str | None) -> str | None:
    text = (text or "").strip()
    return text or None


def _parse_date(text: str | None, label: str, errors: list[str]) -> date | None:
    text = _optional(text)
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        errors.append(f"{label}: not a date (YYYY-MM-DD)")
        return None


def _parse_amount(text: str | None, label: str, errors: list[str]) -> Decimal | None:
    text = _optional(text)
    if text is None:
        return None
    try:
        amount = Decimal(text.replace(",", "."))
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite():
        errors.append(f"{label}: not an amount (e.g. 1190.00)")
        return None
    return amount


def search_criteria(values: Mapping[str, str]) -> tuple[ArchiveFilter, list[str]]:
    """The search form's values as a filter, and what is wrong with them."""
    errors: list[str] = []
    criteria = ArchiveFilter(
        number=_optional(values.get("number")),
        document_type=_optional(values.get("type")),
        issued_from=_parse_date(values.get("issued_from"), "Issued from", errors),
        issued_to=_parse_date(values.get("issued_to"), "Issued to", errors),
        customer_id=_optional(values.get("customer_id")),
        order_reference=_optional(values.get("order_reference")),
        amount_min=_parse_amount(values.get("amount_min"), "Gross amount from", errors),
        amount_max=_parse_amount(values.get("amount_max"), "Gross amount to", errors),
    )
    return criteria, errors


@router.get("")
def search_page(request: Request, current: Auditor) -> Response:
    """The search form and, once sent, a page of matching documents (``cursor`` for the next)."""
    rt = _runtime(request)
    key = current.key
    params = request.query_params
    values = {name: params.get(name, "") for name in SEARCH_FIELDS}
    allowed = key.archive.document_types
    types = sorted(name for name in CATALOGUE if allowed is None or name in allowed)
    context: dict[str, Any] = {"values": values, "types": types, "errors": [], "entries": None}
    context["next_url"] = None
    if not params:
        return _page("search.html.j2", current=current, **context)
    criteria, errors = search_criteria(values)
    if errors:
        context["errors"] = errors
        return _page("search.html.j2", 422, current=current, **context)
    cursor = _optional(params.get("cursor"))
    with rt.db.session() as session:
        try:
            page = archive_index.search(
                session, criteria, AccessLimits.of(key.archive), limit=PAGE_SIZE, cursor=cursor
            )
        except InvalidCursor as error:
            context["errors"] = [str(error)]
            return _page("search.html.j2", 422, current=current, **context)
        entries = [ArchiveEntryView.of(entry) for entry in page.entries]
    criteria_used = {name: str(value) for name, value in vars_of(criteria).items() if value is not None}
    log_access(rt, "archive.search", key, None, criteria=criteria_used, results=len(entries))
    context["entries"] = entries
    if page.next_cursor is not None:
        kept = {name: value for name, value in values.items() if value}
        context["next_url"] = f"{PREFIX}?{urlencode({**kept, 'cursor': page.next_cursor})}"
    return _page("search.html.j2", current=current, **context)


def _fields(view: ArchiveEntryView) -> list[tuple[str, str]]:
    shown: list[tuple[str, str]] = []
    for name in ArchiveEntryView.model_fields:
        value = getattr(view, name)
        if isinstance(value, bool):
            text = "yes" if value else "no"
        elif isinstance(value, date):
            text = _when(value)
        elif isinstance(value, Decimal):
            text = _money(value)
        else:
            text = "—" if value is None else str(value)
        shown.append((_LABELS.get(name, name.replace("_", " ").capitalize()), text))
    return shown


@router.get("/documents/{entry_id}")
def document_page(request: Request, entry_id: uuid.UUID, current: Auditor) -> Response:
    """One archived document: its index record and its verification, computed now."""
    rt = _runtime(request)
    key = current.key
    entry = visible_entry(rt, entry_id, key)
    log_access(rt, "archive.read", key, str(entry_id))
    with rt.db.session() as session:
        verification = verify_entry(session, rt.archive, entry)
    log_access(rt, "archive.verify", key, str(entry_id), verified=verification.verified)
    view = ArchiveEntryView.of(entry)
    return _page(
        "document.html.j2", current=current, entry=view, fields=_fields(view), verification=verification
    )


@router.get("/documents/{entry_id}/pdf")
def document_pdf(request: Request, entry_id: uuid.UUID, current: Auditor) -> StreamingResponse:
    """The archived original, inline, exactly as the API's download serves (and logs) it."""
    return download_pdf(request, entry_id, current.key)


@router.get("/documents/{entry_id}/xml")
def document_xml(request: Request, entry_id: uuid.UUID, current: Auditor) -> Response:
    """The embedded e-invoice XML, as the API serves it."""
    return download_xml(request, entry_id, current.key)


def _exports_page(
    request: Request, current: SignedIn, status: int = 200, errors: list[str] | None = None, **form: Any
) -> HTMLResponse:
    rt = _runtime(request)
    with rt.db.session() as session:
        rows = session.scalars(
            select(ArchiveExport)
            .where(ArchiveExport.api_key_id == current.key.id)
            .order_by(ArchiveExport.created_at.desc(), ArchiveExport.id)
            .limit(EXPORTS_SHOWN)
        ).all()
        exports = [ExportView.model_validate(row, from_attributes=True) for row in rows]
    values = {"period_from": "", "period_to": "", "include_pdfs": False, **form}
    return _page(
        "exports.html.j2",
        status,
        current=current,
        exports=exports,
        finished=archive_exports.FINISHED,
        errors=errors or [],
        values=values,
    )


@router.get("/exports")
def exports_page(request: Request, current: Auditor) -> Response:
    """This key's exports with their progress, and the form to request another."""
    return _exports_page(request, current)


@router.post("/exports")
def request_export(request: Request, current: Auditor, fields: CheckedForm) -> Response:
    """Request a GoBD Z3 export of a period (what this key may see), built by a background job."""
    errors: list[str] = []
    period_from = _parse_date(fields.get("period_from"), "Period from", errors)
    period_to = _parse_date(fields.get("period_to"), "Period to", errors)
    include_pdfs = fields.get("include_pdfs") == "on"
    form = {
        "period_from": fields.get("period_from", ""),
        "period_to": fields.get("period_to", ""),
        "include_pdfs": include_pdfs,
    }
    if not errors and (period_from is None or period_to is None):
        errors.append("Give the first and the last day of the period.")
    if errors or period_from is None or period_to is None:
        return _exports_page(request, current, 422, errors, **form)
    try:
        export_id = archive_exports.request_export(
            _runtime(request), current.key, period_from, period_to, include_pdfs
        )
    except archive_exports.InvalidPeriod as error:
        return _exports_page(request, current, 422, [f"Invalid period: {error}"], **form)
    request.app.state.enqueue_export(export_id)
    return RedirectResponse(f"{PREFIX}/exports", status_code=303)


@router.get("/exports/{export_id}/zip")
def export_zip(request: Request, export_id: uuid.UUID, current: Auditor) -> StreamingResponse:
    """A finished export's ZIP, streamed from the archive as the API's download serves it."""
    return download_export(request, export_id, current.key)
