"""What the key tests share: small schemas, hostile text strategies, what a hashed part looks
like, and the spec's catalogue with each key's type and TTL."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from hypothesis import settings
from hypothesis import strategies as st

from arketic_cache import (
    TTL,
    AIModelConfigKey,
    AIPromptKey,
    AIResponseKey,
    ChatMessagesKey,
    ChatMetadataKey,
    ChatParticipantsKey,
    KBDocumentsKey,
    KBEmbeddingKey,
    KBSearchKey,
    KeySchema,
    RateLimitAIRequestsKey,
    RateLimitAITokensKey,
    RateLimitApiGlobalKey,
    RateLimitApiKey,
    RateLimitDownloadKey,
    RateLimitIpKey,
    RateLimitOrgMonthlyKey,
    RateLimitUploadKey,
    RedisType,
    SessionKey,
    SessionRefreshFamilyKey,
    SessionRefreshKey,
    SessionUserKey,
    StringKey,
    UserPermissionsKey,
    UserPreferencesKey,
    UserProfileKey,
    stable_hash,
)
from arketic_cache._keys import MAX_PART_LENGTH


class Pair(StringKey[int]):
    template = "t:{a}:{b}"
    a: str
    b: str


class TaggedPair(StringKey[int]):
    template = "t:{a}:{b}"
    hash_tag = "b"
    a: str
    b: str


class MaybeKey(StringKey[int]):
    template = "m:{a}"
    a: str | None


class Unversioned(StringKey[int]):
    template = "v:{a}"
    a: str


class Version1(StringKey[int]):
    template = "v:{a}"
    schema_version = 1
    a: str


class Version2(StringKey[int]):
    template = "v:{a}"
    schema_version = 2
    a: str


#: Characters that are syntax somewhere: separators, SCAN globs, hash tags, our escape and hash
#: markers, whitespace, C0/C1 controls and DEL, a line separator, non-ASCII.
HOSTILE_CHARS = [*":*?[]\\{}%# \t\r\n\x00\x1b\x7f\x85\u2028é€😀", "a", "1", "N", "A", "3"]


HOSTILE_LITERALS = ["", "%N", "%3A", "%25", "#", "#" + "0" * 32, "*", "{x}", "x" * 128, "x" * 129]


hostile_text = st.one_of(
    st.text(),  # any Unicode (no lone surrogates)
    st.text(st.sampled_from(HOSTILE_CHARS), max_size=12),
    st.text(st.sampled_from(HOSTILE_CHARS), min_size=40, max_size=300),  # hashed once escaped
    st.sampled_from(HOSTILE_LITERALS),
)


#: Few characters, so distinct pairs that might render alike come up often.
tiny_text = st.text(st.sampled_from([*":%3A#N{}*"]), max_size=5)


pair_values = st.tuples(hostile_text, hostile_text) | st.tuples(tiny_text, tiny_text)


HASHED_PART = re.compile(r"#[0-9a-f]{32}")


GLOB_CHARS = set("*?[]\\")


# Rendering is pure; a deadline would only make the properties depend on the machine's speed.
pure = settings(deadline=None, max_examples=300)


#: What the design (research §4) says a part must percent-encode: separators, globs, braces,
#: our escape and hash markers, the space, and control and line-breaking characters (C0, DEL,
#: C1, U+2028/U+2029), each as its UTF-8 bytes in %XX form.
ESCAPED_CHARS = (
    set("%:{}*?[]\\# ")
    | {chr(c) for c in range(0x20)}
    | {chr(c) for c in range(0x7F, 0xA0)}
    | {"\u2028", "\u2029"}
)


def is_hashed(value: str) -> bool:
    """True if ``value`` is too long once escaped and so must render as ``#`` + a hash."""
    escaped_length = sum(len(quote(c, safe="")) if c in ESCAPED_CHARS else 1 for c in value)
    return escaped_length > MAX_PART_LENGTH


PROMPT_HASH = stable_hash({"model": "gpt-4o", "prompt": "Hello"})


QUERY_HASH = stable_hash({"q": "redis caching", "top_k": 5})


TOKEN_HASH = stable_hash("refresh-token-value")


SESSION_ID = "3f2b8c1e9a7d4b6f"


CATALOGUE: list[tuple[KeySchema, str]] = [
    (UserProfileKey(user_id=123), "user:123:profile"),
    (UserPreferencesKey(user_id=123), "user:123:preferences"),
    (UserPermissionsKey(user_id=123), "user:123:permissions"),
    (ChatMessagesKey(chat_id=456), "chat:456:messages"),
    (ChatParticipantsKey(chat_id=456), "chat:456:participants"),
    (ChatMetadataKey(chat_id=456), "chat:456:metadata"),
    (AIResponseKey(prompt_hash=PROMPT_HASH), f"ai:response:{PROMPT_HASH}"),
    (AIModelConfigKey(model="gpt-4o"), "ai:model:gpt-4o:config"),
    (AIPromptKey(prompt_hash=PROMPT_HASH), f"ai:prompt:{PROMPT_HASH}"),
    (KBDocumentsKey(kb_id=7), "kb:7:documents"),
    (KBSearchKey(kb_id=7, query_hash=QUERY_HASH), f"kb:7:search:{QUERY_HASH}"),
    (KBEmbeddingKey(doc_id="doc1", chunk=3), "kb:embedding:doc1:3"),
    (RateLimitApiKey(user_id=42, endpoint="chat"), "rate:api:42:chat"),
    (RateLimitApiGlobalKey(endpoint="chat"), "rate:api:global:chat"),
    (RateLimitIpKey(ip_address="10.0.0.1"), "rate:api:ip:10.0.0.1"),
    (RateLimitAIRequestsKey(user_id=42), "rate:ai:42:requests"),
    (RateLimitAITokensKey(user_id=42), "rate:ai:42:tokens"),
    (RateLimitOrgMonthlyKey(org_id="org1"), "rate:ai:org1:monthly"),
    (RateLimitUploadKey(user_id=42), "rate:upload:42"),
    (RateLimitDownloadKey(user_id=42), "rate:download:42"),
    (SessionKey(session_id=SESSION_ID), f"session:{SESSION_ID}"),
    (SessionUserKey(user_id=42), "session:user:42"),
    (SessionRefreshKey(token_hash=TOKEN_HASH), f"session:refresh:{TOKEN_HASH}"),
    (SessionRefreshFamilyKey(family_id="f1"), "session:refresh:family:f1"),
]


# Redis type per the spec's "Data Types Usage" table (STRING: profiles, API responses; HASH:
# preferences, configurations; LIST: chat messages; SET: permissions, unique collections; ZSET:
# sliding windows) and the TTL row per the "TTL Strategy" table.
TYPES_AND_TTLS: list[tuple[type[KeySchema], RedisType, TTL]] = [
    (UserProfileKey, RedisType.STRING, TTL.API_RESPONSE),
    (UserPreferencesKey, RedisType.HASH, TTL.DEFAULT),
    (UserPermissionsKey, RedisType.SET, TTL.API_RESPONSE),
    (ChatMessagesKey, RedisType.LIST, TTL.DEFAULT),
    (ChatParticipantsKey, RedisType.SET, TTL.DEFAULT),
    (ChatMetadataKey, RedisType.HASH, TTL.DEFAULT),
    (AIResponseKey, RedisType.STRING, TTL.AI_RESPONSE),
    (AIModelConfigKey, RedisType.HASH, TTL.AI_RESPONSE),
    (AIPromptKey, RedisType.STRING, TTL.AI_RESPONSE),
    (KBDocumentsKey, RedisType.STRING, TTL.API_RESPONSE),
    (KBSearchKey, RedisType.STRING, TTL.SEARCH_RESULT),
    (KBEmbeddingKey, RedisType.STRING, TTL.AI_RESPONSE),
    (RateLimitApiKey, RedisType.ZSET, TTL.RATE_LIMIT_WINDOW),
    (RateLimitApiGlobalKey, RedisType.ZSET, TTL.RATE_LIMIT_WINDOW),
    (RateLimitIpKey, RedisType.ZSET, TTL.RATE_LIMIT_WINDOW),
    (RateLimitAIRequestsKey, RedisType.ZSET, TTL.RATE_LIMIT_WINDOW),
    (RateLimitAITokensKey, RedisType.HASH, TTL.RATE_LIMIT_WINDOW),
    (RateLimitOrgMonthlyKey, RedisType.HASH, TTL.RATE_LIMIT_WINDOW),
    (RateLimitUploadKey, RedisType.ZSET, TTL.RATE_LIMIT_WINDOW),
    (RateLimitDownloadKey, RedisType.ZSET, TTL.RATE_LIMIT_WINDOW),
    (SessionKey, RedisType.STRING, TTL.USER_SESSION),
    (SessionUserKey, RedisType.ZSET, TTL.USER_SESSION),
    (SessionRefreshKey, RedisType.HASH, TTL.USER_SESSION),
    (SessionRefreshFamilyKey, RedisType.HASH, TTL.USER_SESSION),
]


# Every catalogue schema with an ``Id`` field (``str | int``), and how to build one from an id.
ID_SCHEMAS: list[tuple[type[KeySchema], dict[str, Any]]] = [
    (UserProfileKey, {}),
    (UserPreferencesKey, {}),
    (UserPermissionsKey, {}),
    (ChatMessagesKey, {}),
    (ChatParticipantsKey, {}),
    (ChatMetadataKey, {}),
    (KBDocumentsKey, {}),
    (KBSearchKey, {"query_hash": QUERY_HASH}),
    (KBEmbeddingKey, {"chunk": 3}),
    (RateLimitApiKey, {"endpoint": "chat"}),
    (RateLimitAIRequestsKey, {}),
    (RateLimitAITokensKey, {}),
    (RateLimitOrgMonthlyKey, {}),
    (RateLimitUploadKey, {}),
    (RateLimitDownloadKey, {}),
    (SessionKey, {}),
    (SessionUserKey, {}),
]


def id_field(schema: type[KeySchema]) -> str:
    """The name of the schema's ``Id`` (``str | int``) field."""
    (name,) = [n for n, f in schema.model_fields.items() if f.annotation == (str | int)]
    return name
