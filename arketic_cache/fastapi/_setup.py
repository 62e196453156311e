"""``install(app)``: the exception handlers and the session cookie settings of one app."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from .._exceptions import BackendError, RateLimitExceeded
from ._ratelimits import rate_limit_exceeded_handler
from ._sessions import SessionCookie

__all__ = ["backend_error_handler", "install"]


async def backend_error_handler(request: Request, exc: Exception) -> Response:
    """A ``BackendError`` raised by a strict object (degrading ones never raise) as a 503."""
    return JSONResponse(
        {"detail": "Redis is unavailable; try again shortly"},
        status_code=503,
        headers={"Retry-After": "1"},
    )


def install(app: Any, *, session_cookie: SessionCookie | None = None) -> None:
    """Add the handlers (``RateLimitExceeded`` as 429 with headers, ``BackendError`` as 503)
    and keep this app's session cookie settings."""
    app.add_exception_handler(RateLimitExceeded, rate_limit_exceeded_handler)
    app.add_exception_handler(BackendError, backend_error_handler)
    if session_cookie is not None:
        app.state.arketic_session_cookie = session_cookie
