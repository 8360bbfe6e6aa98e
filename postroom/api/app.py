"""The FastAPI application."""

from __future__ import annotations

import uuid

from fastapi import FastAPI

from postroom import __version__
from postroom.api import web
from postroom.api.core_calls import install_core_errors
from postroom.api.openapi import install_openapi
from postroom.api.problems import install_problem_handlers
from postroom.api.routes import (
    accounts,
    admin,
    archive,
    batches,
    bookings,
    catalogue,
    collection,
    commissions,
    documents,
    dunning,
    followups,
    health,
    invoices,
    metrics,
    orders,
    payment_plans,
    payments,
    templates,
    webhooks,
)
from postroom.api.trace import TraceParentMiddleware
from postroom.runtime import Runtime, runtime

DESCRIPTION = """\
Render invoices, credit notes, dunning letters and statements from templates and deliver them to
print, e-mail, e-letter and archive. Errors are RFC 9457 problem details; authenticate with
`Authorization: Bearer <API key>`.
"""


def create_app(rt: Runtime | None = None) -> FastAPI:
    """The API over ``rt`` (this process's runtime by default), enqueuing into Dramatiq."""
    from postroom.jobs import actors  # installs the Redis broker before anything is enqueued

    app = FastAPI(title="postroom", version=__version__, description=DESCRIPTION)
    app.state.runtime = rt or runtime()

    def enqueue_render(document_id: uuid.UUID) -> None:
        actors.render_document.send(str(document_id))

    def expand_batch(batch_id: uuid.UUID) -> None:
        actors.expand_batch.send(str(batch_id))

    def retry_batch(batch_id: uuid.UUID, actor: str) -> None:
        actors.retry_failed_in_batch.send(str(batch_id), 0, actor)

    def ping_broker() -> None:
        client = getattr(actors.broker, "client", None)
        if client is None:
            raise RuntimeError("no Redis broker configured (POSTROOM_REDIS_URL)")
        client.ping()

    def enqueue_export(export_id: uuid.UUID) -> None:
        actors.build_archive_export.send(str(export_id))

    app.state.enqueue_render = enqueue_render
    app.state.enqueue_export = enqueue_export
    app.state.ping_broker = ping_broker
    app.state.expand_batch = expand_batch
    app.state.broker = actors.broker
    app.state.metrics = metrics.metrics_registry(app.state.runtime, actors.broker)
    app.state.retry_batch = retry_batch
    app.state.eletter_followup = actors.follow_eletter_outcome
    install_problem_handlers(app)
    install_core_errors(app)
    for module in (
        documents,
        batches,
        catalogue,
        templates,
        webhooks,
        archive,
        web,
        admin,
        health,
        metrics,
        orders,
        invoices,
        payments,
        commissions,
        dunning,
        collection,
        accounts,
        payment_plans,
        followups,
        bookings,
    ):
        app.include_router(module.router)
    install_openapi(app)
    app.add_middleware(TraceParentMiddleware)
    return app
