"""Key schemas: frozen pydantic models that render, parse and pattern-match Redis keys.

A schema names its template (``"user:{user_id}:profile"``), its TTL row and, through its base
class, its Redis data type and value type::

    class UserProfileKey(StringKey[UserProfile]):
        template = "user:{user_id}:profile"
        ttl = TTL.API_RESPONSE
        user_id: int

    UserProfileKey(user_id=123).render()  ->  "user:123:profile"

Rendering, parsing and escaping are the templates' (``_template.py``): injective and glob-safe.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, Generic, NewType, TypeVar

from pydantic import BaseModel

from ._exceptions import KeySchemaError
from ._template import (
    MAX_PART_LENGTH,
    Template,
    escape_part,
    stable_hash,
    type_argument,
    unescape_part,
)
from ._ttl import TTL

__all__ = [
    "MAX_PART_LENGTH",
    "HashKey",
    "KeySchema",
    "ListKey",
    "RateLimitKey",
    "RedisKey",
    "RedisType",
    "SetKey",
    "SortedSetKey",
    "StreamKey",
    "StringKey",
    "escape_part",
    "stable_hash",
    "unescape_part",
]

#: A rendered key; only ``KeySchema.render`` makes these, so a raw ``str`` is a type error.
RedisKey = NewType("RedisKey", str)

V = TypeVar("V")
M = TypeVar("M", bound=BaseModel)


class RedisType(Enum):
    """The Redis data type a schema's key holds."""

    STRING = "string"
    HASH = "hash"
    LIST = "list"
    SET = "set"
    ZSET = "zset"
    STREAM = "stream"


class KeySchema(Template):
    """Base of every key schema: the fields are the key's dynamic parts.

    Subclass one of the typed bases (``StringKey[V]``, ``HashKey[M]``, ``ListKey[V]``,
    ``SetKey[V]``, ``SortedSetKey[V]``, ``StreamKey[M]``) and set ``template`` and ``ttl``.
    Optional: ``schema_version`` (appended as ``:v<N>``; bump it when the value model changes
    so old keys are never read again) and ``hash_tag`` (a field whose part is wrapped in
    ``{}`` so that all keys sharing it land in one cluster slot).
    """

    ttl: ClassVar[TTL] = TTL.DEFAULT
    redis_type: ClassVar[RedisType]
    value_type: ClassVar[Any]

    if TYPE_CHECKING:

        def render(self) -> RedisKey:
            """The key string, e.g. ``user:123:profile`` (computed once per key object)."""

    @classmethod
    def _check_class(cls) -> None:
        name = cls.__name__
        if not hasattr(cls, "redis_type"):
            raise KeySchemaError(
                f"{name}: derive from StringKey, HashKey, ListKey, SetKey, SortedSetKey, "
                "StreamKey or RateLimitKey"
            )
        if not isinstance(cls.ttl, TTL):
            raise KeySchemaError(f"{name}: ttl must be a TTL member, not {cls.ttl!r}")


class _ValueTyped(KeySchema):
    """Records the value type given as the typed base's parameter."""

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        cls.value_type = type_argument(cls)
        super().__pydantic_init_subclass__(**kwargs)


class StringKey(_ValueTyped, Generic[V]):
    """A key holding one JSON value of type ``V`` (a pydantic model, a list, an int, ...)."""

    redis_type = RedisType.STRING

    if TYPE_CHECKING:

        def _string_value(self) -> V: ...


class HashKey(_ValueTyped, Generic[M]):
    """A key holding a hash: model ``M``'s fields as hash fields (each a JSON value)."""

    redis_type = RedisType.HASH

    if TYPE_CHECKING:

        def _hash_value(self) -> M: ...


class ListKey(_ValueTyped, Generic[V]):
    """A key holding a list of JSON values of type ``V``."""

    redis_type = RedisType.LIST

    if TYPE_CHECKING:

        def _list_value(self) -> V: ...


class SetKey(_ValueTyped, Generic[V]):
    """A key holding a set of JSON values of type ``V``."""

    redis_type = RedisType.SET

    if TYPE_CHECKING:

        def _set_value(self) -> V: ...


class SortedSetKey(_ValueTyped, Generic[V]):
    """A key holding a sorted set: JSON members of type ``V`` with float scores."""

    redis_type = RedisType.ZSET

    if TYPE_CHECKING:

        def _zset_value(self) -> V: ...


class StreamKey(_ValueTyped, Generic[M]):
    """A key holding a stream whose entries are model ``M``'s fields (each a JSON value)."""

    redis_type = RedisType.STREAM

    if TYPE_CHECKING:

        def _stream_value(self) -> M: ...


class RateLimitKey(KeySchema):
    """A key the rate limiter owns: the only schema ``RedisRateLimiter`` and ``@rate_limited`` take.

    The limiter picks the storage from the limit: an exact log is a sorted set (``ZSET``, the
    default here), sub-window buckets and monthly quotas are hashes; set ``redis_type`` to
    ``RedisType.HASH`` for keys used with those. No repository reads these keys.
    """

    redis_type = RedisType.ZSET
    value_type = None

    if TYPE_CHECKING:

        def _rate_limit_key(self) -> None: ...
