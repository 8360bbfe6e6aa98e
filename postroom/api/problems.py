"""RFC 9457 problem details for every error the API returns."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from pydantic_core import ErrorDetails
from starlette.exceptions import HTTPException
from starlette.middleware.base import RequestResponseEndpoint

from postroom.log import get_logger

PROBLEM_JSON = "application/problem+json"
log = get_logger(__name__)


class FieldError(BaseModel):
    """One invalid field: where (``data.lines[0].unit_price``), what is wrong, and pydantic's error type."""

    field: str
    message: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldError] | None = None


class ProblemError(Exception):
    """Raise to answer with a problem document."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        slug: str | None = None,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.problem = Problem(
            type=f"urn:postroom:problem:{slug}" if slug else "about:blank",
            title=title,
            status=status,
            detail=detail,
            errors=errors,
        )
        self.headers = headers


def field_path(location: Sequence[int | str]) -> str:
    """``("data", "lines", 0, "unit_price")`` → ``data.lines[0].unit_price``; the body itself is ``body``."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path or "body"


def field_errors(errors: Iterable[ErrorDetails], strip: tuple[str, ...] = ()) -> list[FieldError]:
    """Pydantic errors as field errors; input values are left out on purpose (they may be personal data)."""
    result = []
    for error in errors:
        location = list(error["loc"])
        if location and location[0] in strip:
            location = location[1:]
        message = error["msg"].removeprefix("Value error, ")
        result.append(FieldError(field=field_path(location), message=message, type=error["type"]))
    return result


def validation_problem(errors: list[FieldError]) -> ProblemError:
    """A 422 naming every invalid field."""
    summary = "; ".join(f"{e.field}: {e.message}" for e in errors[:5])
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return ProblemError(422, "Request is invalid", summary + more, slug="validation", errors=errors)


def problem_response(problem: Problem, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """Serialise a problem with the ``application/problem+json`` media type."""
    return JSONResponse(
        problem.model_dump(exclude_none=True),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error, including FastAPI's own, as problem details."""

    async def on_problem(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, ProblemError)
        return problem_response(error.problem, error.headers)

    async def on_validation(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        errors = field_errors(error.errors(), strip=("body",))
        return problem_response(validation_problem(errors).problem)

    async def on_http(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, HTTPException)
        title = {404: "Not found", 405: "Method not allowed"}.get(error.status_code, "HTTP error")
        detail: Any = error.detail if isinstance(error.detail, str) else None
        return problem_response(Problem(title=title, status=error.status_code, detail=detail), error.headers)

    @app.middleware("http")
    async def contain_unexpected(request: Request, call_next: RequestResponseEndpoint) -> Response:
        # Caught here, before Starlette's outermost handler, which would log the message with a
        # traceback: the message may quote data (a database echoing a row). Only the type is logged.
        try:
            return await call_next(request)
        except Exception as error:
            log.error("unhandled error", path=request.url.path, error=type(error).__name__)
            return problem_response(
                Problem(title="Internal error", status=500, type="urn:postroom:problem:internal")
            )

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
