"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from postroom.core.migrate import current_revision, head_revision
from postroom.runtime import Runtime

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


def _database(rt: Runtime) -> None:
    with rt.db.engine.connect() as connection:
        connection.execute(text("SELECT 1"))
        if current_revision(connection) != head_revision():
            raise RuntimeError("database schema is not at the latest migration; run 'postroom migrate'")


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Ready when the database (migrated), Redis and the archive answer and every channel's
    configuration is usable. The other channels' backends are reported under ``channels`` but
    do not gate readiness: while one is down, documents are still accepted and wait for it."""
    rt: Runtime = request.app.state.runtime
    checks: dict[str, Any] = {
        "database": asyncio.to_thread(_database, rt),
        "redis": asyncio.to_thread(request.app.state.ping_broker),
    }
    channel_checks: dict[str, Any] = {}
    try:
        channels = rt.channels
    except ValueError as error:  # configuration errors name the variable, never its value
        results = {"configuration": f"failed: {error}"}
    else:
        results = {"configuration": "ok"}
        checks["archive"] = channels["archive"].check()
        channel_checks = {name: channel.check() for name, channel in channels.items() if name != "archive"}
    results |= await _run(checks)
    ready = all(result == "ok" for result in results.values())
    body = {
        "status": "ready" if ready else "not ready",
        "checks": results,
        "channels": await _run(channel_checks),
    }
    return JSONResponse(body, status_code=200 if ready else 503)


async def _run(checks: dict[str, Any]) -> dict[str, str]:
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            await asyncio.wait_for(check, timeout=5)
            results[name] = "ok"
        except Exception as error:
            results[name] = f"failed: {error}" if str(error) else f"failed: {type(error).__name__}"
    return results
