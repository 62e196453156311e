"""The application's lifespan: ``init_redis()`` on startup, ``close_redis()`` on shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from .._connection import RedisConnection, close_redis, current_connection, init_redis
from .._exceptions import BackendError, NotInitializedError

__all__ = ["Lifespan", "redis_lifespan"]

#: What ``FastAPI(lifespan=...)`` takes: a function of the app giving an async context manager,
#: which may yield lifespan state (a mapping that requests see as ``request.state``).
Lifespan = Callable[[Any], AbstractAsyncContextManager[Mapping[str, Any] | None]]


async def _release(conn: RedisConnection) -> None:
    """Close ``conn``; forget it as the process-wide connection if it still is."""
    try:
        current = current_connection()
    except NotInitializedError:
        current = None
    if current is conn:
        await close_redis()
    else:
        await conn.aclose()


def redis_lifespan(
    url: str | None = None,
    *,
    require: bool = False,
    then: Lifespan | None = None,
    **settings: Any,
) -> Callable[[Any], AbstractAsyncContextManager[dict[str, Any]]]:
    """A lifespan that sets up the process-wide connection before the app's own lifespan
    ``then`` runs, and closes it after.

    ``url`` and ``settings`` go to ``init_redis()`` (default: ``REDIS_URL`` and the
    environment). The app starts while Redis is down (calls degrade until it is up) unless
    ``require=True``, which fails startup instead. Each startup makes a new connection, so a
    test suite may start app after app in one process. The state yielded holds ``redis``
    (the connection) and whatever ``then`` yields.
    """

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[dict[str, Any]]:
        try:
            conn = await init_redis(url, require=require, **settings)
        except BackendError:
            await close_redis()  # the connection it set up before the ping failed
            raise
        try:
            if then is None:
                yield {"redis": conn}
            else:
                async with then(app) as own:
                    yield {"redis": conn, **(own or {})}
        finally:
            await _release(conn)

    return lifespan
