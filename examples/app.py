"""The spec's application in miniature: sessions, a cached AI answer, a rate-limited chat with
a live page, health and monitoring. ``make serve`` runs it on http://127.0.0.1:8000 (Redis at
``REDIS_URL``, else the embedded ``memory://`` backend)::

    curl -i -X POST localhost:8000/login -H 'content-type: application/json' \\
         -d '{"username": "ada", "password": "arketic"}'
    open http://127.0.0.1:8000/            # the chat page, live over server-sent events

Routes: ``POST /login``, ``GET /me``, ``POST /logout``, ``POST /logout-everywhere``,
``POST /refresh``, ``GET /ai/answer?q=...``, ``POST /chat/{chat_id}/messages`` (5 per 10 s
per user), ``GET /chat/{chat_id}/events`` (SSE, resumes from ``Last-Event-ID``),
``WS /chat/{chat_id}/ws``, ``GET /health``, ``GET /health/live``, ``GET /monitoring/redis``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import time
from pathlib import Path

from fastapi import Depends, FastAPI, HTTPException, Request, WebSocket, WebSocketException
from fastapi.responses import HTMLResponse, StreamingResponse
from pydantic import BaseModel, Field

from arketic_cache import TTL, Channel, StreamKey, StreamRelay, cached
from arketic_cache.fastapi import (
    SessionCookie,
    SessionCookiesDep,
    SessionDep,
    event_stream,
    health_router,
    install,
    rate_limit,
    redis_lifespan,
    relay_websocket,
)

#: Where Redis is: REDIS_URL, else the in-process backend (nothing to install).
REDIS_URL = os.environ.get("REDIS_URL") or "memory://example"
PAGE = Path(__file__).with_name("chat.html")
_SALT = b"arketic-example"


def _hashed(password: str) -> bytes:
    return hashlib.scrypt(password.encode(), salt=_SALT, n=2**12, r=8, p=1)


#: The example's users; passwords are kept hashed (every demo password is "arketic").
USERS = {name: _hashed("arketic") for name in ("ada", "grace", "linus")}


class ChatMessage(BaseModel):
    user: str
    text: str = Field(min_length=1, max_length=500)
    sent_at: float


class ChatChannel(Channel[ChatMessage]):
    template = "example:chat:{chat_id}"
    chat_id: str = Field(pattern=r"^[a-z0-9-]{1,40}$")


class ChatHistoryKey(StreamKey[ChatMessage]):
    template = "example:chat:{chat_id}:history"
    ttl = TTL.DEFAULT
    chat_id: str = Field(pattern=r"^[a-z0-9-]{1,40}$")


chat = StreamRelay(ChatHistoryKey, ChatChannel, max_length=1000, history=50)


class Login(BaseModel):
    username: str
    password: str


class Post(BaseModel):
    text: str = Field(min_length=1, max_length=500)


class Answer(BaseModel):
    question: str
    answer: str
    computed_at: float


app = FastAPI(title="arketic_cache example", lifespan=redis_lifespan(REDIS_URL))
install(app, session_cookie=SessionCookie(max_age=24 * 3600))
app.include_router(health_router())
post_limit = rate_limit(5, window=10, by="user")
connect_limit = rate_limit(30, window=60, name="chat-connect")


def history_key(chat_id: str) -> ChatHistoryKey:
    """The chat's stream key; a malformed chat id is a 404, not a key."""
    try:
        return ChatHistoryKey(chat_id=chat_id)
    except ValueError:
        raise HTTPException(404, "no such chat") from None


@app.get("/", response_class=HTMLResponse)
async def page() -> HTMLResponse:
    return HTMLResponse(PAGE.read_text(encoding="utf-8"))


@app.post("/login")
async def login(body: Login, cookies: SessionCookiesDep, request: Request) -> dict[str, str]:
    known = USERS.get(body.username)
    if known is None or not hmac.compare_digest(known, _hashed(body.password)):
        raise HTTPException(401, "unknown user or wrong password")
    agent = request.headers.get("user-agent")
    await cookies.login(
        {"user_id": body.username, "role": "user", "user_agent": agent}, refresh_token=True
    )
    return {"user_id": body.username}


@app.get("/me")
async def me(session: SessionDep) -> dict[str, str | None]:
    return {"user_id": session.data.user_id, "role": session.data.role}


@app.post("/logout")
async def logout(cookies: SessionCookiesDep) -> dict[str, bool]:
    return {"ended": await cookies.logout()}


@app.post("/logout-everywhere")
async def logout_everywhere(session: SessionDep, cookies: SessionCookiesDep) -> dict[str, int]:
    return {"ended": await cookies.logout_everywhere(session)}


@app.post("/refresh")
async def refresh(cookies: SessionCookiesDep) -> dict[str, bool]:
    await cookies.refresh()
    return {"ok": True}


@cached(TTL.AI_RESPONSE, namespace="example.answer")
async def answer_question(question: str) -> Answer:
    """A slow model's answer, computed once per question for an hour."""
    await asyncio.sleep(0.2)  # the model at work
    reply = f"{len(question.split())} words; the answer is 42"
    return Answer(question=question, answer=reply, computed_at=time.time())


@app.get("/ai/answer")
async def ai_answer(q: str) -> Answer:
    if not 0 < len(q) <= 500:
        raise HTTPException(422, "a question of 1 to 500 characters")
    return await answer_question(q)


@app.post("/chat/{chat_id}/messages", dependencies=[Depends(post_limit)])
async def post_message(chat_id: str, body: Post, session: SessionDep) -> dict[str, str]:
    message = ChatMessage(user=session.data.user_id or "?", text=body.text, sent_at=time.time())
    return {"id": await chat.post(history_key(chat_id), message)}


@app.get("/chat/{chat_id}/events", dependencies=[Depends(connect_limit)])
async def chat_events(
    chat_id: str, request: Request, last_event_id: str | None = None
) -> StreamingResponse:
    return event_stream(chat, history_key(chat_id), request, last_event_id=last_event_id)


@app.websocket("/chat/{chat_id}/ws", dependencies=[Depends(connect_limit)])
async def chat_socket(websocket: WebSocket, chat_id: str, last_id: str | None = None) -> None:
    try:
        key = ChatHistoryKey(chat_id=chat_id)
    except ValueError:
        raise WebSocketException(1008, "no such chat") from None
    await relay_websocket(chat, key, websocket, last_id=last_id)
