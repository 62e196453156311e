"""Key schemas as users see them: construction, render, parse, TTL, the catalogue."""

from __future__ import annotations

from typing import Any, assert_type

from arketic_cache import (
    TTL,
    TTL_SECONDS,
    AIResponseKey,
    ChatMessagesKey,
    JSONObject,
    JSONRecord,
    KBEmbeddingKey,
    KBSearchKey,
    KeySchema,
    RateLimitApiKey,
    RedisKey,
    RedisType,
    SessionKey,
    StringKey,
    UserPermissionsKey,
    UserPreferencesKey,
    UserProfileKey,
    stable_hash,
)
from tests.typing.typing_fixtures import AccountKey, Preferences, Profile, ProfileKey


def own_schemas() -> None:
    key = ProfileKey(user_id=42)
    assert_type(key, ProfileKey)
    assert_type(key.user_id, int)
    assert_type(key.render(), RedisKey)
    assert_type(ProfileKey.parse("app:profile:42"), ProfileKey)
    assert_type(ProfileKey.pattern(), str)
    assert_type(ProfileKey.pattern(user_id=42), str)
    assert_type(AccountKey(account_id="a-1").account_id, str)

    # A rendered key is still a str wherever a str is wanted.
    rendered: str = key.render()
    assert_type(rendered, str)

    # Keys are frozen, hence hashable: they can be dict keys and set members.
    seen: set[ProfileKey] = {key, ProfileKey(user_id=43)}
    assert_type(seen, set[ProfileKey])

    # Every schema is a KeySchema and a typed base.
    schema: KeySchema = key
    typed: StringKey[Profile] = key
    assert_type(schema, KeySchema)
    assert_type(typed, StringKey[Profile])

    assert_type(ProfileKey.ttl, TTL)
    assert_type(ProfileKey.template, str)
    assert_type(ProfileKey.schema_version, int | None)
    assert_type(ProfileKey.hash_tag, str | None)
    assert_type(ProfileKey.redis_type, RedisType)
    assert_type(ProfileKey.value_type, Any)


def ttl_table() -> None:
    assert_type(TTL.AI_RESPONSE.seconds, int)
    assert_type(TTL.DEFAULT.resolve(600), int)
    assert_type(TTL_SECONDS[TTL.USER_SESSION], int)
    assert_type(UserProfileKey.ttl.seconds, int)


def catalogue() -> None:
    assert_type(UserProfileKey(user_id="42"), UserProfileKey)
    assert_type(UserProfileKey(user_id=42), UserProfileKey)
    assert_type(UserProfileKey(user_id=42).user_id, str | int)
    assert_type(UserPreferencesKey(user_id=1), UserPreferencesKey)
    assert_type(UserPermissionsKey(user_id=1), UserPermissionsKey)
    assert_type(ChatMessagesKey(chat_id="c1"), ChatMessagesKey)
    assert_type(SessionKey(session_id="tok"), SessionKey)
    assert_type(KBSearchKey(kb_id=7, query_hash=stable_hash("q")), KBSearchKey)
    assert_type(KBEmbeddingKey(doc_id="d", chunk=3).chunk, int)
    assert_type(RateLimitApiKey(user_id=1, endpoint="/chat"), RateLimitApiKey)
    assert_type(AIResponseKey(prompt_hash=stable_hash({"prompt": "hi"})), AIResponseKey)
    assert_type(AIResponseKey.parse("ai:response:abc"), AIResponseKey)
    assert_type(SessionKey(session_id="tok").render(), RedisKey)

    assert_type(stable_hash(["any", {"json": 1}]), str)

    record = JSONRecord.model_validate({"anything": 1})
    assert_type(record, JSONRecord)
    obj: JSONObject = {"name": "Ada"}
    assert_type(obj, dict[str, Any])


def models() -> None:
    assert_type(Profile(name="Ada").age, int)
    assert_type(Preferences().theme, str)
