"""Live streams for browsers: a ``StreamRelay`` as server-sent events or over a WebSocket.

    @app.get("/chat/{chat_id}/events")
    async def events(chat_id: str, request: Request) -> StreamingResponse:
        return event_stream(chat, ChatHistoryKey(chat_id=chat_id), request)

Each SSE event's ``id`` is the stream entry id, so a browser's ``EventSource`` that reconnects
sends it back as ``Last-Event-ID`` and resumes exactly after it; comments keep idle proxies
from closing the connection. The WebSocket relay sends ``{"id", "message"}`` objects and stops
when the client goes away.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, TypeVar

from fastapi import HTTPException, Request, WebSocket, WebSocketException
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.websockets import WebSocketDisconnect

from .._exceptions import InvalidInputError
from .._keys import StreamKey
from .._relay import StreamRelay
from .._repositories._stream import entry_id

__all__ = ["event_stream", "relay_websocket", "sse_event"]

K = TypeVar("K", bound=StreamKey[Any])
M = TypeVar("M", bound=BaseModel)

_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse_event(data: str, *, id: str | None = None, event: str | None = None) -> bytes:
    """One server-sent event; every line of ``data`` becomes a ``data:`` field."""
    head = "".join(
        f"{name}: {value}\n" for name, value in (("id", id), ("event", event)) if value is not None
    )
    body = "".join(f"data: {line}\n" for line in data.split("\n"))
    return (head + body + "\n").encode("utf-8")


def _last_id(request: Request, last_event_id: str | None) -> str | None:
    given = request.headers.get("last-event-id") or last_event_id
    if given is None:
        return None
    try:
        return entry_id(given)
    except InvalidInputError:
        raise HTTPException(400, "Last-Event-ID is not a stream entry id") from None


def event_stream(
    relay: StreamRelay[K, M],
    key: K,
    request: Request,
    *,
    last_event_id: str | None = None,
    retry: float = 2.0,
) -> StreamingResponse:
    """Server-sent events of ``key``'s entries after the request's ``Last-Event-ID`` (or
    ``last_event_id``, e.g. from a query parameter; without either, the relay's history).

    ``retry`` is the reconnection delay asked of the browser.

    Raises:
        HTTPException: 400 when the last id is not a stream entry id.
    """
    last = _last_id(request, last_event_id)

    async def events() -> AsyncIterator[bytes]:
        yield f"retry: {round(retry * 1000)}\n\n".encode()
        async for item in relay.follow(key, last):
            if item is None:
                yield b": idle\n\n"
            else:
                yield sse_event(item[1].model_dump_json(), id=item[0])

    return StreamingResponse(events(), media_type="text/event-stream", headers=_HEADERS)


async def relay_websocket(
    relay: StreamRelay[K, M], key: K, websocket: WebSocket, *, last_id: str | None = None
) -> None:
    """Accept ``websocket`` and send ``{"id": ..., "message": ...}`` for each of ``key``'s
    entries after ``last_id`` until the client disconnects.

    Raises:
        WebSocketException: 1008 when ``last_id`` is not a stream entry id (before accepting).
    """
    try:
        last = None if last_id is None else entry_id(last_id)
    except InvalidInputError:
        raise WebSocketException(1008, "the last id is not a stream entry id") from None
    await websocket.accept()

    async def send() -> None:
        async for item in relay.follow(key, last):
            if item is not None:
                message = item[1].model_dump(mode="json")
                await websocket.send_json({"id": item[0], "message": message})

    sender = asyncio.ensure_future(send())
    watcher = asyncio.ensure_future(_until_disconnect(websocket))
    try:
        await asyncio.wait({sender, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sender, watcher):
            task.cancel()
        outcomes = await asyncio.gather(sender, watcher, return_exceptions=True)
    failure = outcomes[0]
    if isinstance(failure, Exception) and not isinstance(failure, WebSocketDisconnect):
        raise failure


async def _until_disconnect(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends until it goes away."""
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass
