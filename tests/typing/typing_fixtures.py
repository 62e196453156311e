"""Schemas and models shared by the typing checks in ``pass/`` and ``fail/``.

Type-checked only (import it as ``tests.typing.typing_fixtures``); never imported by pytest.
"""

from __future__ import annotations

from pydantic import BaseModel

from arketic_cache import (
    TTL,
    Channel,
    HashKey,
    ListKey,
    SetKey,
    SortedSetKey,
    StreamKey,
    StringKey,
)


class Profile(BaseModel):
    name: str
    age: int = 0


class Preferences(BaseModel):
    theme: str = "light"
    language: str = "en"


class ChatEvent(BaseModel):
    author: str
    text: str


class AIAnswer(BaseModel):
    text: str
    tokens: int


class ProfileKey(StringKey[Profile]):
    template = "app:profile:{user_id}"
    ttl = TTL.API_RESPONSE
    user_id: int


class AccountKey(StringKey[Profile]):
    """Same value type as ``ProfileKey``, another schema: its keys must not fit a profile repo."""

    template = "app:account:{account_id}"
    account_id: str


class PreferencesKey(HashKey[Preferences]):
    template = "app:prefs:{user_id}"
    user_id: int


class InboxKey(ListKey[ChatEvent]):
    template = "app:inbox:{user_id}"
    user_id: int


class TagsKey(SetKey[str]):
    template = "app:tags:{item_id}"
    item_id: str


class LeaderboardKey(SortedSetKey[str]):
    template = "app:board:{game}"
    game: str


class ChatStreamKey(StreamKey[ChatEvent]):
    template = "app:chat:{chat_id}:events"
    chat_id: str


class AIAnswerKey(StringKey[AIAnswer]):
    template = "app:ai:answer:{prompt_hash}"
    ttl = TTL.AI_RESPONSE
    prompt_hash: str


class Chat(BaseModel):
    text: str


class ChatChannel(Channel[Chat]):
    template = "chat:{chat_id}"
    chat_id: str
