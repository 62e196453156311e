"""What every typed repository shares: the schema binding, key rendering, TTL and counters.

A repository is bound to one key schema; mypy infers the schema and its value type from the
class passed in, so a key of another schema, a value of another type, or a method the Redis
type does not have are type errors. Every write applies the schema's TTL (from the TTL
strategy table) in the same step as the data.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel

from .. import _connection
from .._codec import ValueCodec
from .._core._validate import check_ttl
from .._exceptions import ConfigurationError, InvalidInputError
from .._keys import KeySchema
from .._shell import Shell, misplaced_str

__all__ = ["INF", "MemberRepository", "Repository", "positive"]

K = TypeVar("K", bound=KeySchema)
V = TypeVar("V")
M = TypeVar("M", bound=BaseModel)
K_co = TypeVar("K_co", covariant=True)
V_co = TypeVar("V_co", covariant=True)


class Repository(Shell, Generic[K]):
    """What every typed repository shares: its schema, key rendering, TTL and counters."""

    __slots__ = ("_codec", "_ttl", "schema")
    kind: ClassVar[type[KeySchema]] = KeySchema
    #: Builds the value codec from the schema's value type (ValueCodec or ModelCodec).
    codec_type: ClassVar[type[Any]] = ValueCodec
    _family = "repository"

    def __init__(
        self,
        schema: type[K],
        connection: _connection.RedisConnection | None = None,
        *,
        key_prefix: str | None = None,
        strict: bool = False,
    ) -> None:
        if isinstance(schema, str):
            raise misplaced_str(type(self).__name__, "schema", f"a {self.kind.__name__}", schema)
        if not (isinstance(schema, type) and issubclass(schema, self.kind)):
            raise ConfigurationError(
                f"{type(self).__name__} needs a {self.kind.__name__} schema, not {schema!r}"
            )
        if "_format" not in vars(schema) and not any("template" in vars(c) for c in schema.__mro__):
            raise ConfigurationError(f"{schema.__name__} has no template: it is not a key schema")
        self.schema = schema  # first: it names the repository's counters
        super().__init__(connection, key_prefix=key_prefix, strict=strict)
        self._ttl = 0
        try:
            self._codec = self.codec_type(schema.value_type, 1 << 20)
        except InvalidInputError as exc:  # e.g. a hash of something that is not a model
            raise ConfigurationError(str(exc)) from None

    def _metric_name(self) -> str:
        return self.schema.__name__

    def _rebind(self, conn: _connection.RedisConnection) -> None:
        self._ttl = self.schema.ttl.resolve(conn.settings.default_ttl)
        self._codec.max_bytes = conn.settings.max_value_bytes

    @property
    def ttl(self) -> int:
        """Seconds every write gives the key (the schema's row of the TTL table)."""
        self._bind()
        return self._ttl

    def _key(self, key: K) -> str:
        if type(key) is not self.schema and not isinstance(key, self.schema):
            raise InvalidInputError(
                f"expected a {self.schema.__name__} key, not {type(key).__name__}"
            )
        if self._bound is None or self._connection is None:
            self._bind()  # the global connection may have been replaced since
        return self._prefix + key.render()

    def _keys(self, keys: Iterable[K]) -> tuple[list[str], list[K]]:
        unique = list(dict.fromkeys(keys))
        return [self._key(key) for key in unique], unique

    def _write_ttl(self, ttl: int | None) -> int:
        return self.ttl if ttl is None else check_ttl(ttl)

    def stats(self) -> dict[str, Any]:
        """This repository's hits, misses and decode errors, and the connection's counters."""
        return self._counters()


INF = float("inf")


def positive(value: int | None, name: str) -> int | None:
    if value is not None and (type(value) is not int or value < 1):
        raise InvalidInputError(f"{name} must be a positive int, not {value!r}")
    return value


class MemberRepository(Repository[K], Generic[K, V]):
    """A collection of JSON members of one declared type."""

    __slots__ = ()
    codec_type = ValueCodec
    _codec: ValueCodec[V]

    def _encode(self, values: Iterable[V]) -> list[bytes]:
        encoded = [self._codec.encode(value) for value in values]
        if not encoded:
            raise InvalidInputError("give at least one member")
        return encoded
