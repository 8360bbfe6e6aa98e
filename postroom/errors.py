"""Exceptions shared across layers.

Messages of these exceptions are written to logs, job state and API responses,
so they must never contain personal data: name the field or the step, not the value.
"""

from __future__ import annotations


class PostroomError(Exception):
    """Base of postroom's own errors; ``code`` is a stable machine-readable name."""

    code = "error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class PermanentError(PostroomError):
    """Retrying cannot help (bad template, rejected recipient, content conflict)."""

    code = "permanent_error"


class TransientError(PostroomError):
    """A later attempt may succeed (timeouts, 4xx SMTP replies, unreachable services)."""

    code = "transient_error"


def safe_detail(error: BaseException) -> tuple[str, str]:
    """``(code, detail)`` of an error, safe to store and show.

    Foreign exceptions may quote personal data in their message (an SMTP server
    echoing an address, a database echoing a row), so only their class name is kept.
    """
    if isinstance(error, PostroomError):
        return error.code, error.detail[:1000]
    return "internal_error", type(error).__name__
