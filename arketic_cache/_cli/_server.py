"""The server a command works on: settings from ``--url``/``REDIS_URL``, a bytes client,
SCAN in batches, and what a scan learns about each key."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis

from .. import _catalogue
from .._connection import RedisConnection, bytes_client
from .._core._analysis import KeyFacts
from .._core._validate import check_pattern, escape_glob
from .._drive import map_error
from .._exceptions import ConfigurationError, InvalidInputError
from .._keys import KeySchema
from .._settings import RedisSettings
from ._output import Progress

__all__ = ["SCAN_BATCH", "Server", "load_schemas", "schema_named"]

SCAN_BATCH = 1000


def load_schemas(module: str | None) -> list[type[KeySchema]]:
    """The catalogue's key schemas, then those of ``module`` (an importable name)."""
    found = [_schemas_in(_catalogue)]
    if module is not None:
        try:
            own = importlib.import_module(module)
        except ImportError as exc:
            raise ConfigurationError(f"--schemas {module}: cannot import it ({exc})") from None
        found.insert(0, _schemas_in(own))
    return [schema for group in found for schema in group]


def _schemas_in(module: Any) -> list[type[KeySchema]]:
    return [
        value
        for value in vars(module).values()
        if inspect.isclass(value)
        and issubclass(value, KeySchema)
        and "template" in value.__dict__
        and value.__module__ == module.__name__
    ]


def schema_named(name: str, schemas: Sequence[type[KeySchema]]) -> type[KeySchema]:
    for schema in schemas:
        if schema.__name__ == name:
            return schema
    known = ", ".join(sorted(s.__name__ for s in schemas))
    raise InvalidInputError(f"no key schema named {name!r} (known: {known})")


@dataclass(slots=True)
class Server:
    """One server: the library's connection (health, info) and a bytes client (the rest)."""

    settings: RedisSettings
    connection: RedisConnection
    client: redis.Redis

    @classmethod
    def open(cls, url: str | None) -> Server:
        settings = RedisSettings.from_env() if url is None else RedisSettings.from_env(url=url)
        return cls(settings, RedisConnection(settings), bytes_client(settings))

    def close(self) -> None:
        self.client.close()
        self.connection.close_sync()

    @property
    def memory(self) -> bool:
        return self.connection.backend == "memory"

    def fail(self, exc: BaseException) -> Exception:
        """A redis-py error as our one-line ``BackendError``, secrets removed."""
        return map_error(exc, self.connection.state)

    def match(self, pattern: str | None, schema: type[KeySchema] | None) -> str:
        """The SCAN MATCH pattern: ``pattern`` as given, or ``schema``'s under the prefix."""
        if schema is not None:
            return escape_glob(self.settings.key_prefix) + schema.pattern()
        if pattern is None:
            raise InvalidInputError("give a PATTERN or --schema NAME")
        return check_pattern(pattern)

    def scan(
        self, match: str, progress: Progress, budget: int | None = None
    ) -> Iterator[list[bytes]]:
        """Batches of keys matching ``match``, at most ``budget`` keys in all (SCAN: a key
        present throughout comes at least once; one changed meanwhile may or may not)."""
        cursor, seen = 0, 0
        while True:
            try:
                cursor, found = self.client.scan(cursor, match=match, count=SCAN_BATCH)
            except redis.RedisError as exc:
                raise self.fail(exc) from None
            keys = cast(list[bytes], found)
            if budget is not None and seen + len(keys) > budget:
                keys = keys[: budget - seen]
            seen += len(keys)
            progress.advance(len(keys), " keys")
            if keys:
                yield keys
            if cursor == 0 or (budget is not None and seen >= budget):
                return

    def facts(self, keys: Sequence[bytes], memory: bool = True) -> list[KeyFacts]:
        """Type, TTL and (sampled, where the server has ``MEMORY USAGE``) size of each key;
        keys gone since the scan are left out."""
        sample = memory and not self.memory
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.type(key)
                    pipe.pttl(key)
                    if sample:
                        pipe.execute_command("MEMORY", "USAGE", key, "SAMPLES", "5")  # type: ignore[no-untyped-call]
                replies = pipe.execute()
        except redis.RedisError as exc:
            raise self.fail(exc) from None
        step = 3 if sample else 2
        facts = []
        for i, key in enumerate(keys):
            kind, pttl = replies[i * step], replies[i * step + 1]
            if kind == b"none":
                continue
            size = replies[i * step + 2] if sample else None
            ttl = None if pttl < 0 else pttl / 1000
            facts.append(KeyFacts(key.decode("utf-8", "replace"), kind.decode(), ttl, size))
        return facts
