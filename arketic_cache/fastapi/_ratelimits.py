"""Rate limits for FastAPI: a dependency factory, the 429 handler and a pure ASGI middleware.

A limit is keyed by an explicit ``name`` or the matched route's path template (never by
walking ``app.routes``), and by client: the IP (``request.client.host``; ``X-Forwarded-For``
only from the named ``trusted_proxies``), the session's user, a hashed API key, or one bucket
for everyone.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable, Collection, Iterable
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Request, Response, WebSocketException
from fastapi.responses import JSONResponse
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._catalogue import RateLimitApiGlobalKey, RateLimitApiKey, RateLimitIpKey
from .._core._ratelimit import Decision, Limit, rate_limit_headers
from .._exceptions import ConfigurationError, RateLimitExceeded
from .._keys import RateLimitKey, stable_hash
from .._ratelimit import RedisRateLimiter
from .._ttl import TTL
from ._dependencies import get_rate_limiter, global_rate_limiter

__all__ = [
    "RateLimit",
    "RateLimitIpEndpointKey",
    "RateLimitMiddleware",
    "client_ip",
    "rate_limit",
    "rate_limit_exceeded_handler",
    "rate_limits_enabled",
]

By = Literal["ip", "user", "api_key", "global"]
#: A client identity of your own: a string (or None to fall back to the client's IP).
Identify = Callable[[HTTPConnection], Awaitable[str | None]]

#: WebSocket close code for a denied connection (RFC 6455 "policy violation").
WS_POLICY_VIOLATION = 1008


class RateLimitIpEndpointKey(RateLimitKey):
    """``rate:api:ip:{ip_address}:{endpoint}``: per-IP, per-endpoint limit."""

    template = "rate:api:ip:{ip_address}:{endpoint}"
    ttl = TTL.RATE_LIMIT_WINDOW
    ip_address: str
    endpoint: str


class RateLimitApiKeyKey(RateLimitKey):
    """``rate:api:key:{key_hash}:{endpoint}``: per-API-key limit (the key is stored hashed)."""

    template = "rate:api:key:{key_hash}:{endpoint}"
    ttl = TTL.RATE_LIMIT_WINDOW
    key_hash: str
    endpoint: str


async def rate_limits_enabled() -> bool:
    """Whether limits apply: override it (``app.dependency_overrides[rate_limits_enabled] =
    lambda: False``) to turn every ``rate_limit`` dependency off in tests."""
    return True


def _trusted(host: str, proxies: Collection[str]) -> bool:
    if host in proxies:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(
        "/" in proxy and address in ipaddress.ip_network(proxy, strict=False) for proxy in proxies
    )


def client_ip(connection: HTTPConnection, trusted_proxies: Collection[str] = ()) -> str:
    """The client's address: the peer's, or, when the peer is a trusted proxy (an address or
    a network such as ``"10.0.0.0/8"``), the last ``X-Forwarded-For`` hop that is not one.
    A client cannot forge its way past a limit: untrusted peers' headers are ignored."""
    peer = connection.client.host if connection.client else "unknown"
    if not trusted_proxies or not _trusted(peer, trusted_proxies):
        return peer
    hops = [hop.strip() for hop in connection.headers.get("x-forwarded-for", "").split(",")]
    for hop in reversed([hop for hop in hops if hop]):
        if not _trusted(hop, trusted_proxies):
            return hop
    return peer


def _endpoint(connection: HTTPConnection, name: str | None) -> str:
    if name is not None:
        return name
    route = connection.scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(path, str):
        raise ConfigurationError("rate_limit() outside a route needs an explicit name=")
    return path


def _limits(limits: tuple[int | Limit, ...], window: float) -> tuple[Limit, ...]:
    if not limits:
        raise ConfigurationError("rate_limit() needs at least one limit, e.g. rate_limit(10)")
    return tuple(limit if isinstance(limit, Limit) else Limit(limit, window) for limit in limits)


class RateLimit:
    """A rate-limit dependency (built by ``rate_limit()``); returns the ``Decision``.

    Allowed responses carry the ``RateLimit`` headers; a denied HTTP request is a 429 with
    them and ``Retry-After``; a denied WebSocket is closed before it is accepted (1008).
    """

    def __init__(
        self,
        limits: tuple[Limit, ...],
        *,
        name: str | None,
        by: By | Identify,
        trusted_proxies: Collection[str],
        api_key_header: str,
        cost: int,
        limiter: RedisRateLimiter | None,
    ) -> None:
        if not (callable(by) or by in ("ip", "user", "api_key", "global")):
            raise ConfigurationError(
                f"by= is 'ip', 'user', 'api_key', 'global' or a function, not {by!r}"
            )
        self.limits = limits
        self.name = name
        self.by = by
        self.trusted_proxies = frozenset(trusted_proxies)
        self.api_key_header = api_key_header
        self.cost = cost
        self.limiter = limiter

    async def key(self, connection: HTTPConnection) -> RateLimitKey:
        """The key this request counts under."""
        endpoint = _endpoint(connection, self.name)
        by = self.by
        if by == "global":
            return RateLimitApiGlobalKey(endpoint=endpoint)
        if by == "api_key":
            secret = connection.headers.get(self.api_key_header)
            if secret:
                return RateLimitApiKeyKey(key_hash=stable_hash(secret), endpoint=endpoint)
        elif by == "user":
            from ._sessions import session_user_id

            user = await session_user_id(connection)
            if user is not None:
                return RateLimitApiKey(user_id=user, endpoint=endpoint)
        elif callable(by):
            found = await by(connection)
            if found is not None:
                return RateLimitApiKey(user_id=found, endpoint=endpoint)
        ip = client_ip(connection, self.trusted_proxies)
        return RateLimitIpEndpointKey(ip_address=ip, endpoint=endpoint)

    async def __call__(
        self,
        connection: HTTPConnection,
        response: Response,
        limiter: Annotated[RedisRateLimiter, Depends(get_rate_limiter)],
        enabled: Annotated[bool, Depends(rate_limits_enabled)],
    ) -> Decision | None:
        if not enabled:
            return None
        decision = await (self.limiter or limiter).check(
            await self.key(connection), *self.limits, cost=self.cost
        )
        headers = rate_limit_headers(decision)
        if decision.allowed:
            response.headers.update(headers)
            return decision
        message = str(RateLimitExceeded(decision))
        if connection.scope["type"] == "websocket":
            raise WebSocketException(WS_POLICY_VIOLATION, reason=message[:120])
        raise HTTPException(429, detail=message, headers=headers)


def rate_limit(
    *limits: int | Limit,
    window: float = 60,
    name: str | None = None,
    by: By | Identify = "ip",
    trusted_proxies: Iterable[str] = (),
    api_key_header: str = "X-API-Key",
    cost: int = 1,
    limiter: RedisRateLimiter | None = None,
) -> RateLimit:
    """A dependency admitting at most ``limits`` (ints are per ``window`` seconds).

    ``name`` keys the limit (default: the route's path template, e.g. ``/chats/{chat_id}``);
    ``by`` counts per client IP, per session user (``"user"``; anonymous requests by IP), per
    API key (hashed; requests without one by IP), ``"global"`` or a function of the request.
    ``limiter`` defaults to the global one (``get_rate_limiter``, overridable); keep the
    returned object to override this limit alone in tests.
    """
    return RateLimit(
        _limits(limits, window),
        name=name,
        by=by,
        trusted_proxies=tuple(trusted_proxies),
        api_key_header=api_key_header,
        cost=cost,
        limiter=limiter,
    )


async def rate_limit_exceeded_handler(request: Request, exc: Exception) -> Response:
    """``RateLimitExceeded`` (e.g. from a ``@rate_limited`` function) as a 429 with headers."""
    assert isinstance(exc, RateLimitExceeded)
    return JSONResponse(
        {"detail": str(exc)}, status_code=429, headers=rate_limit_headers(exc.decision)
    )


class RateLimitMiddleware:
    """A pure ASGI middleware admitting at most ``limits`` per client IP (or, with
    ``by="global"``, for everyone), before routing; ``exempt`` paths are never counted.

    ``app.add_middleware(RateLimitMiddleware, limits=(Limit(100, 60),))``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limits: Iterable[int | Limit],
        window: float = 60,
        by: Literal["ip", "global"] = "ip",
        name: str = "all",
        trusted_proxies: Iterable[str] = (),
        exempt: Iterable[str] = ("/health", "/health/live"),
        limiter: RedisRateLimiter | None = None,
    ) -> None:
        if by not in ("ip", "global"):
            raise ConfigurationError(f"RateLimitMiddleware counts by 'ip' or 'global', not {by!r}")
        self.app = app
        self.limits = _limits(tuple(limits), window)
        self.by = by
        self.name = name
        self.trusted_proxies = frozenset(trusted_proxies)
        self.exempt = frozenset(exempt)
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        if self.by == "global":
            key: RateLimitKey = RateLimitApiGlobalKey(endpoint=self.name)
        else:
            key = RateLimitIpKey(ip_address=client_ip(connection, self.trusted_proxies))
        decision = await (self.limiter or global_rate_limiter()).check(key, *self.limits)
        headers = rate_limit_headers(decision)
        if not decision.allowed:
            await _deny(scope, send, str(RateLimitExceeded(decision)), headers)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw = list(message.get("headers", []))
                raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
                message = {**message, "headers": raw}
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _deny(scope: Scope, send: Send, message: str, headers: dict[str, str]) -> None:
    if scope["type"] == "websocket":
        await send(
            {"type": "websocket.close", "code": WS_POLICY_VIOLATION, "reason": message[:120]}
        )
        return
    body = json.dumps({"detail": message}).encode()
    raw: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": 429, "headers": raw})
    await send({"type": "http.response.body", "body": body})
