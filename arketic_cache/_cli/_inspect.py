"""The reading commands: ``health``, ``info``, ``keys`` and ``analyze``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .._cache import SyncRedisCache
from .._core._analysis import Grouper
from .._health import health_report_sync
from ._output import Progress, emit_json, table
from ._server import Server, load_schemas, schema_named

__all__ = ["EXIT_BY_LEVEL", "analyze", "health", "info", "keys"]

#: The monitoring-plugin convention: 0 ok, 1 warning, 2 critical, 3 unknown.
EXIT_BY_LEVEL = {"ok": 0, "warning": 1, "critical": 2, "unknown": 3}


def health(server: Server, args: argparse.Namespace) -> int:
    report = health_report_sync(server.connection)
    if args.json:
        emit_json(report.model_dump(mode="json"))
    else:
        print(f"{report.level.upper()}: {report.url} ({report.duration_ms:.1f} ms)")
        rows = [(name, c.level, c.reason) for name, c in report.checks.items()]
        table(("check", "level", "reason"), rows)
    return EXIT_BY_LEVEL[report.level]


def info(server: Server, args: argparse.Namespace) -> int:
    statistics = SyncRedisCache(server.connection, strict=True).get_info()
    checks = health_report_sync(server.connection).checks
    document: dict[str, Any] = {
        "url": server.settings.display_url,
        "backend": server.connection.backend,
        **statistics,
        "persistence": checks["persistence"].value,
        "persistence_meaning": checks["persistence"].reason,
        "eviction_policy": checks["eviction_policy"].value,
        "eviction_meaning": checks["eviction_policy"].reason,
    }
    if args.json:
        emit_json(document)
    else:
        table(("field", "value"), [(name, _plain(value)) for name, value in document.items()])
    return 0


def _plain(value: Any) -> Any:
    return ", ".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else value


def keys(server: Server, args: argparse.Namespace) -> int:
    schemas = load_schemas(args.schemas)
    schema = None if args.schema is None else schema_named(args.schema, schemas)
    match = server.match(args.pattern, schema)
    progress = Progress("scanned")
    found: dict[str, Any] = {}
    for batch in server.scan(match, progress, budget=None):
        for fact in server.facts(batch):
            found.setdefault(fact.key, fact)
        if len(found) >= args.limit:
            break
    listed = sorted(found.values(), key=lambda f: f.key)[: args.limit]
    progress.done(f"{progress.count:,} keys seen, {len(listed):,} listed (--limit {args.limit})")
    if args.json:
        emit_json(
            [
                {"key": f.key, "type": f.type, "ttl_s": f.ttl, "memory_bytes": f.memory}
                for f in listed
            ]
        )
    else:
        rows = [
            (f.key, f.type, "none" if f.ttl is None else round(f.ttl), f.memory) for f in listed
        ]
        table(("key", "type", "ttl_s", "memory_bytes"), rows)
    return 0


def analyze(server: Server, args: argparse.Namespace) -> int:
    schemas = load_schemas(args.schemas)
    grouper = Grouper(schemas, args.by, server.settings.key_prefix, top=args.top)
    progress = Progress("analyzed")
    for batch in server.scan(args.pattern, progress, budget=args.budget):
        grouper.add(server.facts(batch))
    summary = grouper.summary()
    bounded = " (the --budget: not every key)" if summary.scanned >= args.budget else ""
    progress.done(f"{summary.scanned:,} keys{bounded}")
    if args.json:
        emit_json(
            {
                "scanned": summary.scanned,
                "budget_reached": bool(bounded),
                "without_ttl": summary.without_ttl,
                "groups": summary.groups,
                "biggest": [
                    {"key": f.key, "type": f.type, "memory_bytes": f.memory, "ttl_s": f.ttl}
                    for f in summary.biggest
                ],
            }
        )
        return 0
    rows = [
        (
            g["group"],
            g["keys"],
            g["memory_bytes"],
            g["ttl_min_s"],
            g["ttl_median_s"],
            g["ttl_max_s"],
            g["without_ttl"],
        )
        for g in summary.groups
    ]
    table(("group", "keys", "memory_bytes", "ttl_min", "ttl_median", "ttl_max", "no_ttl"), rows)
    if summary.biggest:
        print()
        table(
            ("biggest keys", "type", "memory_bytes"),
            [(f.key, f.type, f.memory) for f in summary.biggest],
        )
    if summary.without_ttl:
        print(
            f"\n{summary.without_ttl:,} key(s) without a TTL: every key should expire "
            "(the TTL rules); see the no_ttl column",
            file=sys.stdout,
        )
    return 0
