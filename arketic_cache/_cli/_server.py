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
from .._connection import RedisConnection, bytes_client, cluster_bytes_clients
from .._core._analysis import KeyFacts
from .._core._slots import group_by_slot, key_slot
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
    """One server, or every primary of a cluster: the library's connection (health, info)
    and a bytes client per primary (the rest; ``client`` is the first)."""

    settings: RedisSettings
    connection: RedisConnection
    client: redis.Redis
    nodes: list[redis.Redis]
    #: On a cluster, which of ``nodes`` serves each slot; None for one server.
    owners: tuple[int | None, ...] | None = None

    @classmethod
    def open(cls, url: str | None) -> Server:
        settings = RedisSettings.from_env() if url is None else RedisSettings.from_env(url=url)
        connection = RedisConnection(settings)
        if settings.cluster is None:
            client = bytes_client(settings)
            return cls(settings, connection, client, [client])
        try:
            nodes, owners = cluster_bytes_clients(settings)
        except redis.RedisError as exc:
            raise map_error(exc, connection.state) from None
        return cls(settings, connection, nodes[0], nodes, owners)

    def close(self) -> None:
        for node in self.nodes:
            node.close()
        self.connection.close_sync()

    @property
    def memory(self) -> bool:
        return self.connection.backend == "memory"

    def fail(self, exc: BaseException) -> Exception:
        """A redis-py error as our one-line ``BackendError``, secrets removed."""
        return map_error(exc, self.connection.state)

    def node_of(self, key: bytes) -> redis.Redis:
        """The client of the primary serving ``key``."""
        if self.owners is None:
            return self.client
        owner = self.owners[key_slot(key.decode("utf-8", "surrogateescape"))]
        if owner is None:
            raise self.fail(redis.ConnectionError("no cluster node serves the key's slot"))
        return self.nodes[owner]

    def by_node(self, keys: Sequence[bytes]) -> list[tuple[redis.Redis, list[int]]]:
        """The positions of ``keys`` grouped by the primary serving them."""
        if self.owners is None:
            return [(self.client, list(range(len(keys))))]
        groups: dict[int, tuple[redis.Redis, list[int]]] = {}
        for i, key in enumerate(keys):
            node = self.node_of(key)
            groups.setdefault(id(node), (node, []))[1].append(i)
        return list(groups.values())

    def unlink(self, keys: Sequence[bytes]) -> int:
        """UNLINK ``keys`` (on a cluster one command per slot); how many existed."""
        if self.owners is None:
            return int(self.client.unlink(*keys))
        removed = 0
        for node, positions in self.by_node(keys):
            slots = group_by_slot(keys[i].decode("utf-8", "surrogateescape") for i in positions)
            with node.pipeline(transaction=False) as pipe:
                for group in slots.values():
                    pipe.unlink(*(keys[positions[i]] for i in group))
                removed += sum(int(n) for n in pipe.execute())
        return removed

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
        """Batches of keys matching ``match`` (every primary's in turn on a cluster), at most
        ``budget`` keys in all (SCAN: a key present throughout comes at least once; one
        changed meanwhile may or may not)."""
        seen = 0
        for node in self.nodes:
            cursor = 0
            while True:
                try:
                    cursor, found = node.scan(cursor, match=match, count=SCAN_BATCH)
                except redis.RedisError as exc:
                    raise self.fail(exc) from None
                keys = cast(list[bytes], found)
                if budget is not None and seen + len(keys) > budget:
                    keys = keys[: budget - seen]
                seen += len(keys)
                progress.advance(len(keys), " keys")
                if keys:
                    yield keys
                if budget is not None and seen >= budget:
                    return
                if cursor == 0:
                    break

    def facts(self, keys: Sequence[bytes], memory: bool = True) -> list[KeyFacts]:
        """Type, TTL and (sampled, where the server has ``MEMORY USAGE``) size of each key;
        keys gone since the scan are left out."""
        sample = memory and not self.memory
        step = 3 if sample else 2
        replies: list[Any] = [None] * (len(keys) * step)
        try:
            for node, positions in self.by_node(keys):
                with node.pipeline(transaction=False) as pipe:
                    for i in positions:
                        pipe.type(keys[i])
                        pipe.pttl(keys[i])
                        if sample:
                            pipe.execute_command("MEMORY", "USAGE", keys[i], "SAMPLES", "5")  # type: ignore[no-untyped-call]
                    answers = iter(pipe.execute())
                for i in positions:
                    for j in range(step):
                        replies[i * step + j] = next(answers)
        except redis.RedisError as exc:
            raise self.fail(exc) from None
        facts = []
        for i, key in enumerate(keys):
            kind, pttl = replies[i * step], replies[i * step + 1]
            if kind == b"none":
                continue
            size = replies[i * step + 2] if sample else None
            ttl = None if pttl < 0 else pttl / 1000
            facts.append(KeyFacts(key.decode("utf-8", "replace"), kind.decode(), ttl, size))
        return facts
