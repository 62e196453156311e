"""``flush PATTERN``: count first, then (asked, or ``--yes``) SCAN + UNLINK in batches."""

from __future__ import annotations

import argparse
import sys

import redis

from .._exceptions import InvalidInputError
from ._output import Progress, emit_json
from ._server import Server, load_schemas, schema_named

__all__ = ["flush"]


def _confirmed(count: int, match: str) -> bool:
    if not sys.stdin.isatty():
        return False
    answer = input(f"delete {count:,} key(s) matching {match!r}? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def flush(server: Server, args: argparse.Namespace) -> int:
    schema = None if args.schema is None else schema_named(args.schema, load_schemas(args.schemas))
    match = server.match(args.pattern, schema)
    if not match.strip("*") and not args.all:
        raise InvalidInputError(f"refusing to flush every key ({match!r}): pass --all to mean it")
    counting = Progress("counted")
    count = sum(len(batch) for batch in server.scan(match, counting))
    counting.done(f"{count:,} keys match {match!r}")
    if args.dry_run or count == 0 or not (args.yes or _confirmed(count, match)):
        if not args.dry_run and count and not args.yes:
            print("nothing deleted: pass --yes to delete without asking", file=sys.stderr)
        _report(args, match, count, 0)
        return 0
    deleting = Progress("deleted")
    deleted = 0
    for batch in server.scan(match, Progress("rescanned", quiet=True)):
        try:
            deleted += server.unlink(batch)
        except redis.RedisError as exc:
            raise server.fail(exc) from None
        deleting.advance(len(batch), " keys")
    deleting.done(f"{deleted:,} keys deleted (UNLINK)")
    _report(args, match, count, deleted)
    return 0


def _report(args: argparse.Namespace, match: str, matched: int, deleted: int) -> None:
    if args.json:
        emit_json({"pattern": match, "matched": matched, "deleted": deleted})
    else:
        print(f"{match}: {matched:,} matched, {deleted:,} deleted")
