"""The key schemas and typed repositories of the demo."""

from __future__ import annotations

from pydantic import BaseModel

from .._catalogue import ChatMessagesKey, KBSearchKey, UserPermissionsKey
from .._keys import HashKey, StringKey, stable_hash
from .._repositories import HashRepository, ListRepository, SetRepository, StringRepository
from .._ttl import TTL
from ._narration import PREFIX, either, heading, show

__all__ = ["repository_demo", "schema_demo"]


class Profile(BaseModel):
    """A user profile, for the repository demo."""

    name: str
    plan: str = "free"
    logins: int = 0


class ProfileKey(StringKey[Profile]):
    """``user:{user_id}:profile`` holding a Profile (API responses: 5 min)."""

    template = "user:{user_id}:profile"
    ttl = TTL.API_RESPONSE
    user_id: int


class ProfileRecordKey(HashKey[Profile]):
    """``user:{user_id}:record``: the same model as hash fields."""

    template = "user:{user_id}:record"
    user_id: int


def schema_demo() -> None:
    heading("Key schemas (typed, escaped, injective)")
    show("ProfileKey(user_id=123).render()", ProfileKey(user_id=123).render())
    query = stable_hash({"q": "redis ttl", "filters": {"lang": "en"}})
    show(
        "KBSearchKey(kb_id=7, query_hash=...)",
        KBSearchKey(kb_id=7, query_hash=query).render(),
        "query_hash: stable_hash() of the query and filters (the same query, the same key)",
    )
    show(
        "UserPermissionsKey(user_id='1*:x').render()",
        UserPermissionsKey(user_id="1*:x").render(),
        "* and : escaped (%2A, %3A): user input cannot act as a glob or a separator",
    )
    show("ChatMessagesKey.pattern(chat_id='1*')", ChatMessagesKey.pattern(chat_id="1*"))


async def repository_demo() -> None:
    heading("Typed repositories (TTL from the schema, set with the data)")
    profiles = StringRepository(ProfileKey, key_prefix=PREFIX)
    await profiles.set(ProfileKey(user_id=123), Profile(name="Ada"))
    show(
        "StringRepository.get(ProfileKey(user_id=123))", await profiles.get(ProfileKey(user_id=123))
    )
    show("its TTL (TTL.API_RESPONSE)", profiles.ttl, "seconds: 5 min, for API responses")
    records = HashRepository(ProfileRecordKey, key_prefix=PREFIX)
    await records.set(ProfileRecordKey(user_id=1), Profile(name="Bo"))
    await records.update(ProfileRecordKey(user_id=1), {"logins": 3})
    show("HashRepository after update(logins=3)", await records.get(ProfileRecordKey(user_id=1)))
    chat = ListRepository(ChatMessagesKey, key_prefix=PREFIX)
    for i in range(5):
        await chat.push(ChatMessagesKey(chat_id=456), {"text": f"message {i}"}, max_length=3)
    show(
        "ListRepository: 5 pushes with max_length=3",
        messages := await chat.range(ChatMessagesKey(chat_id=456)),
        either(
            bool(messages),
            "the list keeps the newest 3: messages 0 and 1 were trimmed",
            "Redis failed: nothing stored, nothing read",
        ),
    )
    permissions = SetRepository(UserPermissionsKey, key_prefix=PREFIX)
    await permissions.add(UserPermissionsKey(user_id=123), "read", "write")
    show(
        "SetRepository.contains(..., 'write')",
        await permissions.contains(UserPermissionsKey(user_id=123), "write"),
    )
