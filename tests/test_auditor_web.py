"""The auditors' web pages, end to end: the real app under uvicorn, driven by headless Chromium.

Three invoices issued in 2021 go through the real render and archive steps into the S3 store
(moto's server, with Object Lock); an auditor logs in, searches, verifies, opens the PDF,
requests and downloads an export and logs out, as a browser does it.
"""

from __future__ import annotations

import copy
import hashlib
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from urllib.parse import quote

import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Cookie, Page, sync_playwright
from sqlalchemy import select

from postroom.api.web import SESSION_COOKIE, SESSION_SECONDS, session_cookie
from postroom.core.models import ArchiveEvent, ArchiveExport
from postroom.documents.catalogue import document_type
from postroom.embedded.ports import free_port, wait_for_port
from postroom.jobs import archive_exports
from postroom.runtime import Runtime, runtime
from tests.archiving import archive_through_the_hub
from tests.conftest import AUDITOR_KEY, WRITER_KEY, example

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (/usr/bin/chromium)"
)
YEAR = 2021
REFUSED = "unknown or may not read the archive"


@dataclass(frozen=True)
class Archived:
    """One invoice of the module's run as the test knows it independently of the index."""

    document_id: uuid.UUID
    number: str
    sha256: str


@pytest.fixture(scope="module")
def rt(hub_env: dict[str, str]) -> Runtime:
    return runtime()


@pytest.fixture(scope="module")
def archived(rt: Runtime) -> list[Archived]:
    """Three archive-only invoices issued in 2021, with numbers unique to this run."""
    # Delivery runs its channel with asyncio.run, which refuses to start while Playwright's sync
    # API keeps its event loop in this thread: so the documents are archived in a thread of their own.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(archive_invoices, rt).result()


def archive_invoices(rt: Runtime) -> list[Archived]:
    run_id = uuid.uuid4().hex[:8].upper()
    doc_type = document_type("invoice")
    made = []
    for index in range(3):
        body = copy.deepcopy(example("invoice"))
        issued = date(YEAR, 3 + index, 10).isoformat()
        body["channels"] = ["archive"]
        body["data"].update(
            number=f"RE-WEB-{run_id}-{index}", issue_date=issued, delivery_date=issued, due_date=issued
        )
        document_id, sha256 = archive_through_the_hub(rt, doc_type.parse(body))
        made.append(Archived(document_id, body["data"]["number"], sha256))
    return made


@pytest.fixture(scope="module")
def base_url(hub_env: dict[str, str]) -> Iterator[str]:
    """The real app served by uvicorn from a background thread on a free loopback port."""
    from postroom.api.app import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="auditor-web-server", daemon=True)
    thread.start()
    wait_for_port(port, timeout=20)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser: Browser, base_url: str) -> Iterator[BrowserContext]:
    context = browser.new_context(base_url=base_url)
    context.set_default_timeout(10_000)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def log_in(page: Page, key: str) -> int:
    """Send the login form with ``key``; the status of the POST's answer."""
    page.goto("/auditor/login")
    page.get_by_label("API key").fill(key)
    with page.expect_response(
        lambda response: response.request.method == "POST" and response.url.endswith("/auditor/login")
    ) as posted:
        page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    return posted.value.status


def session_of(context: BrowserContext) -> Cookie | None:
    return next((c for c in context.cookies() if c.get("name") == SESSION_COOKIE), None)


def chained(rt: Runtime, kind: str, subject: str | None = None) -> list[ArchiveEvent]:
    with rt.db.session() as session:
        query = select(ArchiveEvent).where(ArchiveEvent.kind == kind, ArchiveEvent.actor == "auditor")
        if subject is not None:
            query = query.where(ArchiveEvent.subject == subject)
        events = list(session.scalars(query.order_by(ArchiveEvent.seq)).all())
        session.expunge_all()
    return events


def test_without_a_session_every_page_leads_to_the_login(
    page: Page, context: BrowserContext, base_url: str, archived: list[Archived]
) -> None:
    page.goto("/auditor")
    assert page.url == f"{base_url}/auditor/login"
    page.goto(f"/auditor/documents/{archived[0].document_id}")
    assert page.url == f"{base_url}/auditor/login"
    pdf = context.request.get(f"{base_url}/auditor/documents/{archived[0].document_id}/pdf", max_redirects=0)
    assert pdf.status == 303
    assert pdf.headers["location"] == "/auditor/login"


def test_only_a_key_that_may_read_the_archive_logs_in(page: Page, context: BrowserContext) -> None:
    assert log_in(page, "not-a-key") == 401
    assert REFUSED in page.get_by_role("alert").inner_text()
    assert page.get_by_label("API key").input_value() == ""

    assert log_in(page, WRITER_KEY) == 401
    assert REFUSED in page.get_by_role("alert").inner_text()
    assert WRITER_KEY not in page.content()
    assert session_of(context) is None


def test_an_auditor_finds_verifies_and_opens_a_document(
    page: Page, context: BrowserContext, base_url: str, archived: list[Archived], rt: Runtime
) -> None:
    target = archived[1]
    assert log_in(page, AUDITOR_KEY) == 303
    assert page.url == f"{base_url}/auditor"
    assert page.locator("#key-id").inner_text() == "auditor"
    cookie = session_of(context)
    assert cookie is not None
    assert cookie.get("httpOnly") is True
    assert cookie.get("sameSite") == "Strict"
    value = cookie.get("value", "")
    assert value.startswith("auditor|")
    assert AUDITOR_KEY not in value
    assert abs(cookie.get("expires", 0) - (time.time() + SESSION_SECONDS)) < 60

    page.get_by_label("Number").fill(target.number)
    page.get_by_role("button", name="Search").click()
    rows = page.locator("table.results tbody tr")
    assert rows.count() == 1
    assert target.number in rows.first.inner_text()
    rows.first.get_by_role("link", name=target.number).click()

    assert page.url == f"{base_url}/auditor/documents/{target.document_id}"
    assert page.locator("#verdict").inner_text() == "verified"
    assert "COMPLIANCE" in page.locator("#verification").inner_text()
    assert target.sha256 in page.locator("#record").inner_text()

    href = page.get_by_role("link", name="Open PDF").get_attribute("href")
    assert href == f"/auditor/documents/{target.document_id}/pdf"
    with page.expect_response(lambda response: response.url.endswith(href)) as opened:
        page.get_by_role("link", name="Open PDF").click()
    assert opened.value.status == 200  # the browser's own request carries the SameSite=Strict session
    assert opened.value.headers["content-type"] == "application/pdf"
    pdf = context.request.get(f"{base_url}{href}")
    assert pdf.status == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"].startswith("inline")
    assert hashlib.sha256(pdf.body()).hexdigest() == pdf.headers["x-content-sha256"] == target.sha256

    searches = chained(rt, "archive.search")
    assert any(e.detail == {"criteria": {"number": target.number}, "results": 1} for e in searches)
    assert chained(rt, "archive.download", str(target.document_id))
    assert [e.detail["verified"] for e in chained(rt, "archive.verify", str(target.document_id))] == [True]


def test_what_a_search_echoes_is_escaped(page: Page) -> None:
    assert log_in(page, AUDITOR_KEY) == 303
    payload = '"><b id="injected">x</b>'
    page.goto(f"/auditor?number={quote(payload)}")
    assert page.locator("#injected").count() == 0
    assert page.get_by_label("Number").input_value() == payload
    assert "No archived document matches." in page.content()


def test_an_auditor_requests_follows_and_downloads_an_export(
    page: Page, context: BrowserContext, base_url: str, archived: list[Archived], rt: Runtime
) -> None:
    assert log_in(page, AUDITOR_KEY) == 303
    page.get_by_role("link", name="Exports").click()
    assert page.url == f"{base_url}/auditor/exports"

    def request(period_from: str, period_to: str) -> int:
        page.get_by_label("Period from").fill(period_from)
        page.get_by_label("Period to").fill(period_to)
        with page.expect_response(lambda response: response.request.method == "POST") as posted:
            page.get_by_role("button", name="Request export").click()
        page.wait_for_load_state()
        return posted.value.status

    assert request(f"{YEAR}-12-31", f"{YEAR}-01-01") == 422
    assert "Invalid period" in page.get_by_role("alert").inner_text()
    assert request(f"{YEAR}-01-01", f"{YEAR}-12-31") == 303
    assert page.url == f"{base_url}/auditor/exports"
    assert page.locator("table.exports tbody tr").first.locator(".status").inner_text() == "queued"

    with rt.db.session() as session:
        export_id = session.scalars(
            select(ArchiveExport.id)
            .where(ArchiveExport.api_key_id == "auditor")
            .order_by(ArchiveExport.created_at.desc())
            .limit(1)
        ).one()
    archive_exports.build_export(rt, export_id)  # what the worker does with the enqueued message
    page.reload()
    row = page.locator("table.exports tbody tr").first
    assert row.locator(".status").inner_text() == "finished"
    href = row.get_by_role("link", name="ZIP").get_attribute("href")
    assert href == f"/auditor/exports/{export_id}/zip"
    zipped = context.request.get(f"{base_url}{href}")
    assert zipped.status == 200
    assert zipped.headers["content-type"] == "application/zip"
    with rt.db.session() as session:
        recorded = session.get_one(ArchiveExport, export_id)
        assert recorded.documents_total >= len(archived)
        sha256 = recorded.sha256
    assert hashlib.sha256(zipped.body()).hexdigest() == zipped.headers["x-content-sha256"] == sha256

    # A form without the session's CSRF token changes nothing.
    period: dict[str, str | float | bool] = {"period_from": f"{YEAR}-01-01", "period_to": f"{YEAR}-01-31"}
    for form in (period, {**period, "csrf": "forged"}):
        forged = context.request.post(f"{base_url}/auditor/exports", form=form, max_redirects=0)
        assert forged.status == 403


def test_logout_and_forged_or_expired_sessions_end_at_the_login(
    page: Page, context: BrowserContext, base_url: str, rt: Runtime
) -> None:
    assert log_in(page, AUDITOR_KEY) == 303
    page.get_by_role("button", name="Log out").click()
    page.wait_for_load_state()
    assert page.url == f"{base_url}/auditor/login"
    assert session_of(context) is None
    page.goto("/auditor")
    assert page.url == f"{base_url}/auditor/login"

    key = next(k for k in rt.settings.api_keys if k.id == "auditor")
    writer = next(k for k in rt.settings.api_keys if k.id == "writer")
    expired = session_cookie(key, now=time.time() - SESSION_SECONDS - 1)
    forged = session_cookie(key).rsplit("|", 1)[0] + "|" + "0" * 64
    other_key = session_cookie(writer)
    for value, lands_on in (
        (expired, "/auditor/login"),
        (forged, "/auditor/login"),
        (other_key, "/auditor/login"),
        (session_cookie(key), "/auditor"),
    ):
        context.add_cookies(
            [{"name": SESSION_COOKIE, "value": value, "domain": "127.0.0.1", "path": "/auditor"}]
        )
        page.goto("/auditor")
        assert page.url == f"{base_url}{lands_on}", value
