"""The public surface: exports, sync/async parity, and rules the source must keep."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

import arketic_cache
from arketic_cache import (
    HashRepository,
    ListRepository,
    RedisCache,
    RedisRateLimiter,
    RedisSessionManager,
    SetRepository,
    SortedSetRepository,
    StreamRepository,
    StringRepository,
    SyncHashRepository,
    SyncListRepository,
    SyncRedisCache,
    SyncRedisRateLimiter,
    SyncRedisSessionManager,
    SyncSetRepository,
    SyncSortedSetRepository,
    SyncStreamRepository,
    SyncStringRepository,
)

PACKAGE = Path(arketic_cache.__file__).parent


def public_methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


class TestExports:
    """``__all__`` names exactly what the package exports."""

    def test_complete(self) -> None:
        """Every public name is listed once (ruff's RUF022 keeps the list sorted)."""
        names = arketic_cache.__all__
        assert len(names) == len(set(names))
        public = {n for n in vars(arketic_cache) if not n.startswith("_")}
        submodules = {"testing", "prometheus", "otel", "fastapi"}  # imported on demand (extras)
        assert set(names) == public - submodules


TWINS = [
    (RedisCache, SyncRedisCache),
    (StringRepository, SyncStringRepository),
    (HashRepository, SyncHashRepository),
    (ListRepository, SyncListRepository),
    (SetRepository, SyncSetRepository),
    (SortedSetRepository, SyncSortedSetRepository),
    (StreamRepository, SyncStreamRepository),
    (RedisRateLimiter, SyncRedisRateLimiter),
    (RedisSessionManager, SyncRedisSessionManager),
]
TWIN_IDS = [sync_cls.__name__ for _, sync_cls in TWINS]


class TestParity:
    """Each async class and its Sync twin have the same methods, parameters and docstrings."""

    @pytest.mark.parametrize(("async_cls", "sync_cls"), TWINS, ids=TWIN_IDS)
    def test_same_methods(self, async_cls: type, sync_cls: type) -> None:
        """Names and signatures match; every async method that is not shared is a coroutine."""
        async_methods, sync_methods = public_methods(async_cls), public_methods(sync_cls)
        assert async_methods == sync_methods
        for name in async_methods:
            if getattr(async_cls, name) is getattr(sync_cls, name):
                continue  # shared, I/O-free (e.g. stats)
            assert inspect.iscoroutinefunction(getattr(async_cls, name)), name
            assert not inspect.iscoroutinefunction(getattr(sync_cls, name)), name

    @pytest.mark.parametrize(("async_cls", "sync_cls"), TWINS, ids=TWIN_IDS)
    def test_same_docstrings(self, async_cls: type, sync_cls: type) -> None:
        """Each public method is documented, and the async twin says what the sync one says.

        ``help()`` and the API reference show either twin; a fix made to one twin's docstring
        must not leave the other telling a different story."""
        for name in public_methods(async_cls):
            sync_doc = inspect.getdoc(getattr(sync_cls, name))
            assert sync_doc, f"{sync_cls.__name__}.{name} has no docstring"
            assert inspect.getdoc(getattr(async_cls, name)) == sync_doc, name

    def test_spec_methods_present(self) -> None:
        """The spec's cache table is fully implemented."""
        spec = {"get", "set", "delete", "exists", "increment", "expire", "get_keys",
                "flush_pattern", "get_info", "get_many", "set_many"}  # fmt: skip
        assert spec <= set(public_methods(RedisCache))

    def test_spec_session_and_rate_limit_methods_present(self) -> None:
        """The spec's session table and rate limiter call are implemented, with its names."""
        spec = {"create_session", "get_session", "update_session", "delete_session",
                "extend_session"}  # fmt: skip
        assert spec <= set(public_methods(RedisSessionManager))
        assert "is_allowed" in public_methods(RedisRateLimiter)


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


class TestSourceRules:
    """Architecture and security rules, checked on the source."""

    @pytest.mark.parametrize(
        "path",
        [
            *sorted((PACKAGE / "_core").glob("*.py")),
            *(PACKAGE / name for name in ("_codec.py", "_keys.py", "_ttl.py", "_exceptions.py")),
        ],
        ids=str,
    )
    def test_core_is_pure(self, path: Path) -> None:
        """The core, and what it builds on (codecs, keys, TTLs, errors), import no I/O,
        concurrency or clock module."""
        assert not imported_modules(path) & {"redis", "asyncio", "threading", "time", "socket"}

    def test_redis_imported_only_by_drivers(self) -> None:
        """Only the drivers, their wire, the connection module (and its sentinel part), the
        subscription seam and the command line (binary-safe reads and writes of every type, on
        a bytes client of its own) import redis; so does the test harness (``testing``), to
        ask the sentinels it starts."""
        allowed = {
            *("_drive.py", "_wire.py", "_connection.py", "_sentinel.py", "_cluster.py"),
            "_subscribe.py",
            "testing.py",
        }
        for path in PACKAGE.rglob("*.py"):
            if path.name not in allowed and path.parent.name != "_cli":
                assert "redis" not in imported_modules(path), path

    def test_no_pickle_no_dangerous_commands(self) -> None:
        """No pickle anywhere; no KEYS, FLUSHDB, FLUSHALL or CONFIG commands are sent, neither
        spelled out (commands are written in capitals; the CLI's ``keys`` subcommand and JSON
        fields are not commands) nor through redis-py's methods."""
        methods = r"\.(flushdb|flushall|config_get|config_set|config_rewrite|config_resetstat)\("
        for path in [*PACKAGE.rglob("*.py"), *PACKAGE.rglob("*.lua")]:
            text = path.read_text()
            assert "pickle" not in imported_modules(path) if path.suffix == ".py" else True
            assert not re.search(r"[\"'](KEYS|FLUSHDB|FLUSHALL|CONFIG)[\"']", text), path
            assert not re.search(methods, text), path
