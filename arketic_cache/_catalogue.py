"""The spec's key catalogue, predefined.

Each schema renders exactly as the spec writes it, holds the Redis type the spec's "Data Types
Usage" table suggests, and takes its TTL from the TTL strategy table. Values whose shape the
spec leaves open are JSON objects (``JSONObject``) or open records (``JSONRecord``); declare
your own schema with your model when you want it typed more tightly.

Note: the spec's rate-limit keys overlap by design (``rate:api:{user_id}:{endpoint}`` with the
user id ``global`` renders like ``rate:api:global:{endpoint}``); keep such ids out of user ids.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from pydantic import BaseModel, ConfigDict

from ._keys import HashKey, ListKey, RateLimitKey, RedisType, SetKey, SortedSetKey, StringKey
from ._ttl import TTL

__all__ = [
    "AIModelConfigKey",
    "AIPromptKey",
    "AIResponseKey",
    "ChatMessagesKey",
    "ChatMetadataKey",
    "ChatParticipantsKey",
    "Id",
    "JSONObject",
    "JSONRecord",
    "KBDocumentsKey",
    "KBEmbeddingKey",
    "KBSearchKey",
    "RateLimitAIRequestsKey",
    "RateLimitAITokensKey",
    "RateLimitApiGlobalKey",
    "RateLimitApiKey",
    "RateLimitDownloadKey",
    "RateLimitIpKey",
    "RateLimitOrgMonthlyKey",
    "RateLimitUploadKey",
    "RefreshFamilyRecord",
    "RefreshTokenRecord",
    "SessionKey",
    "SessionRecord",
    "SessionRefreshFamilyKey",
    "SessionRefreshKey",
    "SessionUserKey",
    "UserPermissionsKey",
    "UserPreferencesKey",
    "UserProfileKey",
]

#: A JSON object with any fields.
JSONObject: TypeAlias = dict[str, Any]
#: An identifier part: ``42`` and ``"42"`` render alike, as the spec's f-strings would.
Id: TypeAlias = str | int


class JSONRecord(BaseModel):
    """An open record for hashes whose fields the spec does not fix (extra fields kept)."""

    model_config = ConfigDict(extra="allow")

    def __init__(self, **data: Any) -> None:
        # Spelled out so that type checkers accept any field, as pydantic does at run time.
        super().__init__(**data)


# -- user ---------------------------------------------------------------------------------------
class UserProfileKey(StringKey[JSONObject]):
    """``user:{user_id}:profile``: the user's profile (STRING, API responses: 5 min)."""

    template = "user:{user_id}:profile"
    ttl = TTL.API_RESPONSE
    user_id: Id


class UserPreferencesKey(HashKey[JSONRecord]):
    """``user:{user_id}:preferences``: preferences as hash fields (HASH, default TTL)."""

    template = "user:{user_id}:preferences"
    user_id: Id


class UserPermissionsKey(SetKey[str]):
    """``user:{user_id}:permissions``: permission names (SET, API responses: 5 min)."""

    template = "user:{user_id}:permissions"
    ttl = TTL.API_RESPONSE
    user_id: Id


# -- chat ---------------------------------------------------------------------------------------
class ChatMessagesKey(ListKey[JSONObject]):
    """``chat:{chat_id}:messages``: recent messages, oldest first (LIST, default TTL)."""

    template = "chat:{chat_id}:messages"
    chat_id: Id


class ChatParticipantsKey(SetKey[str]):
    """``chat:{chat_id}:participants``: participant user ids (SET, default TTL)."""

    template = "chat:{chat_id}:participants"
    chat_id: Id


class ChatMetadataKey(HashKey[JSONRecord]):
    """``chat:{chat_id}:metadata``: chat metadata (HASH, default TTL)."""

    template = "chat:{chat_id}:metadata"
    chat_id: Id


# -- AI -----------------------------------------------------------------------------------------
class AIResponseKey(StringKey[Any]):
    """``ai:response:{prompt_hash}``: a cached AI response (STRING, AI responses: 1 h)."""

    template = "ai:response:{prompt_hash}"
    ttl = TTL.AI_RESPONSE
    prompt_hash: str


class AIModelConfigKey(HashKey[JSONRecord]):
    """``ai:model:{model}:config``: a model's configuration (HASH, AI responses: 1 h)."""

    template = "ai:model:{model}:config"
    ttl = TTL.AI_RESPONSE
    model: str


class AIPromptKey(StringKey[str]):
    """``ai:prompt:{prompt_hash}``: a cached prompt template (STRING, AI responses: 1 h)."""

    template = "ai:prompt:{prompt_hash}"
    ttl = TTL.AI_RESPONSE
    prompt_hash: str


# -- knowledge base -----------------------------------------------------------------------------
class KBDocumentsKey(StringKey[list[JSONObject]]):
    """``kb:{kb_id}:documents``: the document list (STRING, API responses: 5 min)."""

    template = "kb:{kb_id}:documents"
    ttl = TTL.API_RESPONSE
    kb_id: Id


class KBSearchKey(StringKey[Any]):
    """``kb:{kb_id}:search:{query_hash}``: search results (STRING, search results: 15 min)."""

    template = "kb:{kb_id}:search:{query_hash}"
    ttl = TTL.SEARCH_RESULT
    kb_id: Id
    query_hash: str


class KBEmbeddingKey(StringKey[list[float]]):
    """``kb:embedding:{doc_id}:{chunk}``: a chunk's embedding (STRING, AI responses: 1 h)."""

    template = "kb:embedding:{doc_id}:{chunk}"
    ttl = TTL.AI_RESPONSE
    doc_id: Id
    chunk: int


# -- rate limits (owned by the limiter: an exact log is a sorted set, buckets and quotas a hash) ---
class RateLimitApiKey(RateLimitKey):
    """``rate:api:{user_id}:{endpoint}``: per-user, per-endpoint limit."""

    template = "rate:api:{user_id}:{endpoint}"
    ttl = TTL.RATE_LIMIT_WINDOW
    user_id: Id
    endpoint: str


class RateLimitApiGlobalKey(RateLimitKey):
    """``rate:api:global:{endpoint}``: global endpoint limit."""

    template = "rate:api:global:{endpoint}"
    ttl = TTL.RATE_LIMIT_WINDOW
    endpoint: str


class RateLimitIpKey(RateLimitKey):
    """``rate:api:ip:{ip_address}``: per-IP limit."""

    template = "rate:api:ip:{ip_address}"
    ttl = TTL.RATE_LIMIT_WINDOW
    ip_address: str


class RateLimitAIRequestsKey(RateLimitKey):
    """``rate:ai:{user_id}:requests``: AI request limit."""

    template = "rate:ai:{user_id}:requests"
    ttl = TTL.RATE_LIMIT_WINDOW
    user_id: Id


class RateLimitAITokensKey(RateLimitKey):
    """``rate:ai:{user_id}:tokens``: AI token limit (a hash of sub-window token counts).

    Token limits are costs far above an exact log's size, so the limiter keeps buckets.
    """

    template = "rate:ai:{user_id}:tokens"
    ttl = TTL.RATE_LIMIT_WINDOW
    redis_type = RedisType.HASH
    user_id: Id


class RateLimitOrgMonthlyKey(RateLimitKey):
    """``rate:ai:{org_id}:monthly``: an organisation's monthly quota (a hash: month, count).

    Use it with ``quota()`` (or ``Limit.monthly``); the key lives until the month ends.
    """

    template = "rate:ai:{org_id}:monthly"
    ttl = TTL.RATE_LIMIT_WINDOW
    redis_type = RedisType.HASH
    org_id: Id


class RateLimitUploadKey(RateLimitKey):
    """``rate:upload:{user_id}``: file upload limit."""

    template = "rate:upload:{user_id}"
    ttl = TTL.RATE_LIMIT_WINDOW
    user_id: Id


class RateLimitDownloadKey(RateLimitKey):
    """``rate:download:{user_id}``: file download limit."""

    template = "rate:download:{user_id}"
    ttl = TTL.RATE_LIMIT_WINDOW
    user_id: Id


# -- sessions -----------------------------------------------------------------------------------
class SessionRecord(BaseModel):
    """What ``RedisSessionManager`` stores for a session: its data in a small envelope."""

    v: int  # version, bumped by every update
    c: int  # created, epoch ms on Redis' clock
    d: int  # absolute deadline in epoch ms, 0 for none
    f: str | None = None  # the refresh-token family id
    i: str | None = None  # the user's index key
    data: JSONObject


class SessionKey(StringKey[SessionRecord]):
    """``session:{session_id}``: one session as JSON (STRING, user sessions: 1 h).

    ``RedisSessionManager`` puts the SHA-256 of the session id here, never the id itself.
    """

    template = "session:{session_id}"
    ttl = TTL.USER_SESSION
    session_id: Id


class SessionUserKey(SortedSetKey[str]):
    """``session:user:{user_id}``: the user's live sessions (their hashes) and refresh-token
    families (``r:<id>``), scored by expiry in epoch ms (ZSET, 1 h)."""

    template = "session:user:{user_id}"
    ttl = TTL.USER_SESSION
    user_id: Id


class RefreshTokenRecord(BaseModel):
    """A refresh token's record: its family, and 1 once it has been exchanged."""

    family: str
    used: int


class SessionRefreshKey(HashKey[RefreshTokenRecord]):
    """``session:refresh:{token_hash}``: a refresh token, stored by its SHA-256 alone (HASH)."""

    template = "session:refresh:{token_hash}"
    ttl = TTL.USER_SESSION
    token_hash: str


class RefreshFamilyRecord(BaseModel):
    """A refresh-token family: its current token (hash), session (hash), a copy of the
    session's data and the user's index key."""

    token: str
    session: str
    data: JSONObject
    index: str | None = None


class SessionRefreshFamilyKey(HashKey[RefreshFamilyRecord]):
    """``session:refresh:family:{family_id}``: one chain of rotated refresh tokens (HASH)."""

    template = "session:refresh:family:{family_id}"
    ttl = TTL.USER_SESSION
    family_id: str
