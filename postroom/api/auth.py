"""Bearer API keys with scopes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from postroom.api.problems import ProblemError
from postroom.settings import ApiKey, Scope, Settings

_bearer = HTTPBearer(auto_error=False, description="An API key from POSTROOM_API_KEYS")


def require(scope: Scope) -> Callable[..., ApiKey]:
    """A dependency admitting keys with ``scope`` or ``admin``: 401 without a key, 403 without the scope."""

    def dependency(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> ApiKey:
        settings: Settings = request.app.state.runtime.settings
        key = settings.api_key_for(credentials.credentials) if credentials is not None else None
        if key is None:
            raise ProblemError(
                401,
                "Unauthorized",
                "a valid API key is required as 'Authorization: Bearer <key>'",
                slug="unauthorized",
                headers={"WWW-Authenticate": 'Bearer realm="postroom"'},
            )
        if scope not in key.scopes and "admin" not in key.scopes:
            raise ProblemError(403, "Forbidden", f"this API key lacks the scope {scope!r}", slug="forbidden")
        request.state.api_key_id = key.id
        return key

    return dependency
