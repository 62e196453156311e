"""Session cookies: the typed session or 401, login (always a new id), logout, logout
everywhere and the refresh-token flow; a session store that fails is a 503, never a 401."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, HTTPException, Request, Response
from starlette.requests import HTTPConnection

from .._core._session import SessionData
from .._exceptions import BackendError
from .._session import RedisSessionManager

__all__ = [
    "CurrentSession",
    "SessionCookie",
    "SessionCookies",
    "SessionCookiesDep",
    "SessionDep",
    "current_session",
    "get_session_cookie",
    "get_session_cookies",
    "get_session_store",
    "optional_session",
    "session_user_id",
]

#: The body of a 503 when the session store cannot be reached.
UNAVAILABLE = "the session store is unavailable; try again shortly"


@dataclass(frozen=True, slots=True)
class SessionCookie:
    """How the session and refresh-token cookies are set: ``HttpOnly``, ``Secure`` and
    ``SameSite=Lax`` by default; ``max_age`` None makes them end with the browser (Redis'
    idle TTL ends the session itself). Pass one to ``install(app, session_cookie=...)``."""

    name: str = "session"
    secure: bool = True
    httponly: bool = True
    samesite: Literal["lax", "strict", "none"] = "lax"
    path: str = "/"
    domain: str | None = None
    max_age: int | None = None
    refresh_name: str = "refresh_token"
    refresh_path: str = "/"

    def set(self, response: Response, name: str, value: str, path: str) -> None:
        response.set_cookie(
            name,
            value,
            max_age=self.max_age,
            path=path,
            domain=self.domain,
            secure=self.secure,
            httponly=self.httponly,
            samesite=self.samesite,
        )

    def clear(self, response: Response, name: str, path: str) -> None:
        response.delete_cookie(
            name,
            path=path,
            domain=self.domain,
            secure=self.secure,
            httponly=self.httponly,
            samesite=self.samesite,
        )


DEFAULT_COOKIE = SessionCookie()
_lock = threading.Lock()
_store: RedisSessionManager | None = None


async def get_session_cookie(connection: HTTPConnection) -> SessionCookie:
    """The app's cookie settings (``install(app, session_cookie=...)``), or the defaults."""
    return _cookie_settings(connection)


def _cookie_settings(connection: HTTPConnection) -> SessionCookie:
    found = getattr(connection.app.state, "arketic_session_cookie", None)
    return found if isinstance(found, SessionCookie) else DEFAULT_COOKIE


async def get_session_store() -> RedisSessionManager:
    """The session manager behind the cookies: the spec's, but strict, so a Redis failure is
    told apart from an unknown session (503, not 401). Override it to use your own."""
    return _strict_store()


def _strict_store() -> RedisSessionManager:
    global _store
    if _store is None:
        with _lock:
            if _store is None:
                _store = RedisSessionManager(strict=True)
    return _store


@contextlib.contextmanager
def _available() -> Iterator[None]:
    try:
        yield
    except BackendError:
        raise HTTPException(503, detail=UNAVAILABLE, headers={"Retry-After": "1"}) from None


@dataclass(frozen=True, slots=True)
class CurrentSession:
    """The request's live session: its id (the cookie's value) and its typed data."""

    id: str
    data: SessionData


StoreDep = Annotated[RedisSessionManager, Depends(get_session_store)]
CookieDep = Annotated[SessionCookie, Depends(get_session_cookie)]


async def optional_session(
    connection: HTTPConnection, store: StoreDep, cookie: CookieDep
) -> CurrentSession | None:
    """The session the cookie names, or None (no cookie, unknown or expired id)."""
    session_id = connection.cookies.get(cookie.name)
    if not session_id:
        return None
    with _available():
        data = await store.get_session_data(session_id)
    return None if data is None else CurrentSession(session_id, data)


async def current_session(
    found: Annotated[CurrentSession | None, Depends(optional_session)],
) -> CurrentSession:
    """The request's session, or 401."""
    if found is None:
        raise HTTPException(401, detail="not logged in", headers={"WWW-Authenticate": "Cookie"})
    return found


async def session_user_id(connection: HTTPConnection) -> str | None:
    """The user id of the request's session, or None (no session, or Redis failed)."""
    session_id = connection.cookies.get(_cookie_settings(connection).name)
    if not session_id:
        return None
    try:
        data = await _strict_store().get_session_data(session_id)
    except BackendError:
        return None
    return None if data is None else data.user_id


class SessionCookies:
    """Login, logout and refresh for this request, setting and clearing its cookies."""

    def __init__(
        self,
        request: Request,
        response: Response,
        store: RedisSessionManager,
        cookie: SessionCookie,
    ) -> None:
        self.request = request
        self.response = response
        self.store = store
        self.cookie = cookie

    @property
    def session_id(self) -> str | None:
        """The session id the request's cookie holds, if any (not checked against Redis)."""
        return self.request.cookies.get(self.cookie.name) or None

    async def login(
        self, data: Mapping[str, Any] | SessionData, *, refresh_token: bool = False
    ) -> str:
        """Start a session under a new id (any session the request carried ends: no
        fixation) and set its cookie; with ``refresh_token``, the refresh cookie too."""
        cookie = self.cookie
        with _available():
            previous = self.session_id
            if previous is not None:
                await self.store.delete_session(previous)
            session_id = await self.store.new_session(data)
            assert session_id is not None  # strict: a failure raised
            cookie.set(self.response, cookie.name, session_id, cookie.path)
            if refresh_token:
                token = await self.store.issue_refresh_token(session_id)
                assert token is not None
                cookie.set(self.response, cookie.refresh_name, token, cookie.refresh_path)
        return session_id

    async def logout(self) -> bool:
        """End the request's session (and its refresh token); clear the cookies."""
        cookie = self.cookie
        ended = False
        if self.session_id is not None:
            with _available():
                ended = await self.store.delete_session(self.session_id)
        cookie.clear(self.response, cookie.name, cookie.path)
        cookie.clear(self.response, cookie.refresh_name, cookie.refresh_path)
        return ended

    async def logout_everywhere(self, session: CurrentSession) -> int:
        """End every session of the session's user; clear this client's cookies."""
        ended = 0
        if session.data.user_id is not None:
            with _available():
                ended = await self.store.delete_user_sessions(session.data.user_id)
        await self.logout()
        return ended

    async def refresh(self) -> str:
        """Trade the refresh cookie for a new session and token (both rotate); 401 when the
        token is unknown, expired or reused (a reused token revokes its whole family)."""
        cookie = self.cookie
        token = self.request.cookies.get(cookie.refresh_name)
        renewed = None
        if token:
            with _available():
                renewed = await self.store.refresh_session(token)
        if renewed is None:
            cookie.clear(self.response, cookie.refresh_name, cookie.refresh_path)
            raise HTTPException(401, detail="refresh token unknown, expired or already used")
        session_id, new_token = renewed
        cookie.set(self.response, cookie.name, session_id, cookie.path)
        cookie.set(self.response, cookie.refresh_name, new_token, cookie.refresh_path)
        return session_id


async def get_session_cookies(
    request: Request, response: Response, store: StoreDep, cookie: CookieDep
) -> SessionCookies:
    """Login, logout and refresh helpers bound to this request and its response."""
    return SessionCookies(request, response, store, cookie)


SessionDep = Annotated[CurrentSession, Depends(current_session)]
SessionCookiesDep = Annotated[SessionCookies, Depends(get_session_cookies)]
