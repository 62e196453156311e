"""``export``, ``restore`` and ``verify``: a namespace to and from a JSON-lines file (the
format is ``_core/_export.py``'s), streamed, so memory stays flat whatever the key count."""

from __future__ import annotations

import argparse
import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import redis

from .._core._export import (
    Header,
    KeyType,
    Record,
    StreamRead,
    decode_value,
    encode_value,
    end_line,
    header_line,
    parse_header,
    parse_line,
    record_line,
    restore_arguments,
)
from .._exceptions import ExportFormatError, InvalidInputError
from .._lua import RESTORE_KEY
from ._output import Progress, emit_json, table
from ._server import Server, load_schemas, schema_named

__all__ = ["export", "restore", "verify"]

#: Records written per pipeline when restoring.
RESTORE_BATCH = 500
#: How far (ms) a restored expiry may be from the file's and still verify: clocks and the
#: time between reading PTTL and TIME.
TTL_TOLERANCE_MS = 1000
_READ = {
    "string": ("GET",),
    "hash": ("HGETALL",),
    "list": ("LRANGE", 0, -1),
    "set": ("SMEMBERS",),
    "zset": ("ZRANGE", 0, -1, "WITHSCORES"),
    "stream": ("XRANGE", "-", "+"),
}


@dataclass(frozen=True, slots=True)
class Read:
    """A key as the server holds it now: its value as redis-py returns it, or its DUMP."""

    key: bytes
    type: KeyType
    expire_at_ms: int | None
    raw: Any


def _server_ms(server: Server) -> int:
    return _ms(server.client.time())


def _ms(time_reply: Any) -> int:
    """A TIME reply (seconds, microseconds) in milliseconds."""
    seconds, micros = time_reply
    return int(seconds) * 1000 + int(micros) // 1000


def read_keys(server: Server, keys: Sequence[bytes], dump: bool) -> list[Read]:
    """Type, absolute expiry and value (or DUMP payload) of ``keys``; gone ones left out. A
    key whose type changed between the two round trips is read again."""
    found: list[Read] = []
    for node, positions in server.by_node(keys):
        found.extend(_read_on(server, node, [keys[i] for i in positions], dump))
    return found


def _read_on(server: Server, client: redis.Redis, keys: Sequence[bytes], dump: bool) -> list[Read]:
    """``read_keys`` of keys one server (or cluster primary) serves."""
    pending, found = list(keys), []
    for _ in range(3):
        if not pending:
            break
        try:
            with client.pipeline(transaction=False) as pipe:
                pipe.time()
                for key in pending:
                    pipe.type(key)
                    pipe.pttl(key)
                head = pipe.execute()
            now = _ms(head[0])
            kinds = [(k, head[1 + 2 * i].decode(), head[2 + 2 * i]) for i, k in enumerate(pending)]
            live = [(k, t, p) for k, t, p in kinds if t != "none"]
            with client.pipeline(transaction=False) as pipe:
                for key, kind, _ in live:
                    if dump:
                        pipe.dump(key)
                    elif kind in _READ:
                        command = _READ[kind]
                        pipe.execute_command(command[0], key, *command[1:])  # type: ignore[no-untyped-call]
                        if kind == "stream":  # its groups and last id, from the same look
                            pipe.xinfo_groups(key)
                            pipe.xinfo_stream(key)
                    else:
                        raise InvalidInputError(f"{key!r} is a {kind}: not one of the six types")
                values = iter(pipe.execute(raise_on_error=False))
        except redis.RedisError as exc:
            raise server.fail(exc) from None
        pending = []
        for key, kind, pttl in live:
            value = next(values)
            extras = [next(values), next(values)] if kind == "stream" and not dump else []
            if any(isinstance(v, redis.ResponseError) for v in [value, *extras]):
                pending.append(key)  # its type changed meanwhile
                continue
            if kind == "stream" and not dump:
                value = _stream(value, *extras)
            if value is not None and value != [] and value != {} and value != set():
                expire = None if pttl < 0 else now + pttl
                found.append(Read(key, cast(KeyType, kind), expire, _shaped(kind, value, dump)))
    if pending:
        raise InvalidInputError(f"{len(pending)} key(s) kept changing type while read")
    return found


def _shaped(kind: str, value: Any, dump: bool) -> Any:
    """redis-py's raw replies in the shapes ``encode_value`` takes."""
    if dump:
        return value
    if kind == "hash" and isinstance(value, list):
        return dict(zip(value[::2], value[1::2], strict=True))
    if kind == "zset":
        pairs = (
            value
            if value and isinstance(value[0], list | tuple)
            else zip(value[::2], value[1::2], strict=True)
        )
        return [(member, float(score)) for member, score in pairs]
    if kind == "set":
        return set(value)
    return value


def _stream(entries: Any, groups: Any, info: Any) -> StreamRead | None:
    """A stream's entries, groups and last id (None if it vanished between the reads)."""
    if not entries and not groups:
        return None
    return StreamRead(
        [(entry_id, _fields(fields)) for entry_id, fields in entries],
        [(g["name"], _text(g["last-delivered-id"])) for g in groups],
        _text(info["last-generated-id"]),
    )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _fields(fields: Any) -> dict[bytes, bytes]:
    return fields if isinstance(fields, dict) else dict(zip(fields[::2], fields[1::2], strict=True))


def _version(server: Server) -> str:
    try:
        return str(server.client.info("server").get("redis_version", "?"))
    except redis.RedisError:
        return "?"


def export(server: Server, args: argparse.Namespace) -> int:
    schema = None if args.schema is None else schema_named(args.schema, load_schemas(args.schemas))
    match = server.match(args.pattern, schema)
    if args.dump and server.memory:
        raise InvalidInputError(
            "--dump on memory://: the embedded backend's DUMP payloads are not Redis'; "
            "export typed values (without --dump)"
        )
    target = Path(args.output)
    partial = target.with_name(target.name + ".partial")
    progress = Progress("exported")
    count = 0
    try:
        started = _server_ms(server)
        with partial.open("w", encoding="utf-8") as out:
            out.write(header_line(_version(server), started, match, args.dump) + "\n")
            for batch in server.scan(match, Progress("scanned", quiet=True)):
                for read in read_keys(server, batch, args.dump):
                    raw, payload = (None, read.raw) if args.dump else (read.raw, None)
                    out.write(record_line(read.key, read.type, read.expire_at_ms, raw, payload))
                    out.write("\n")
                    count += 1
                progress.advance(len(batch), " keys")
            out.write(end_line(count) + "\n")
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)  # nothing half-written is left behind
        raise
    progress.done(f"{count:,} keys to {target}")
    _summary(args, {"file": str(target), "pattern": match, "keys": count})
    return 0


@dataclass(slots=True)
class _Tally:
    written: int = 0
    existing: int = 0
    expired: int = 0
    invalid: list[str] = field(default_factory=list)


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    with path.open("r", encoding="utf-8", errors="surrogateescape") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.endswith("\n"):
                raise ExportFormatError("cut short (no line end): the file is truncated", number)
            yield number, line


def _records(path: Path, partial: bool, tally: _Tally) -> tuple[Header, Iterator[Record]]:
    """The header, and the records one at a time (with ``partial``, invalid ones skipped
    and named in ``tally``); the end record must come last, with the right count."""
    lines = _lines(path)
    first = next(lines, None)
    if first is None:
        raise ExportFormatError("the file is empty", 1)
    header = parse_header(first[1])

    def records() -> Iterator[Record]:
        count, last = 0, 1
        for number, line in lines:
            last = number
            try:
                parsed = parse_line(line, number, header.dump)
            except ExportFormatError as exc:
                if not partial:
                    raise
                tally.invalid.append(str(exc))
                continue
            if isinstance(parsed, int):
                if parsed != count + len(tally.invalid):
                    raise ExportFormatError(
                        f"the end record counts {parsed} keys, not {count}", number
                    )
                if next(lines, None) is not None:
                    raise ExportFormatError("lines after the end record", number + 1)
                return
            count += 1
            yield parsed
        raise ExportFormatError("no end record: the file is truncated", last + 1)

    return header, records()


def _check(path: Path, partial: bool) -> tuple[Header, int]:
    """Validate the whole file first (nothing is written until it passes)."""
    tally = _Tally()
    header, records = _records(path, partial, tally)
    return header, sum(1 for _ in records)


def _probe_dump(server: Server, records: Iterator[Record]) -> None:
    """RESTORE the first payload under a scratch key: a server whose RDB version cannot
    read the payloads refuses it here, before any real key is written."""
    first = next(records, None)
    if first is None or first.dump is None:
        return
    probe = f"arketic:restore-probe:{uuid.uuid4().hex}"
    try:
        node = server.node_of(probe.encode())
        node.restore(probe, 60_000, first.dump)
        node.unlink(probe)
    except redis.ResponseError as exc:
        raise InvalidInputError(f"the DUMP payloads do not fit this server: {exc}") from None


def restore(server: Server, args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise InvalidInputError(f"{path}: no such file")
    header, total = _check(path, args.partial)
    if header.dump and server.memory:
        raise ExportFormatError(
            "a file of DUMP payloads is never restored on memory:// (the embedded backend's "
            "RESTORE would unpickle it); export typed values instead",
            1,
        )
    tally = _Tally()
    _, records = _records(path, args.partial, tally)
    progress = Progress("restored")
    try:
        if header.dump and not args.dry_run:
            _probe_dump(server, _records(path, args.partial, _Tally())[1])
        sha = None
        if not (args.dry_run or header.dump):
            for node in server.nodes:  # each cluster primary has a script cache of its own
                sha = node.script_load(RESTORE_KEY.text)
        batch: list[Record] = []
        for record in records:
            batch.append(record)
            if len(batch) == RESTORE_BATCH:
                _write(server, batch, header, args, sha, tally)
                progress.advance(len(batch), " keys")
                batch = []
        _write(server, batch, header, args, sha, tally)
        progress.advance(len(batch), " keys")
    except redis.RedisError as exc:
        raise server.fail(exc) from None
    verb = "would write" if args.dry_run else "written"
    progress.done(
        f"{tally.written:,} {verb}, {tally.existing:,} kept (already there), "
        f"{tally.expired:,} expired (skipped), {len(tally.invalid):,} invalid of {total:,}"
    )
    _summary(
        args,
        {
            "file": str(path),
            "dry_run": args.dry_run,
            "written": tally.written,
            "existing": tally.existing,
            "expired": tally.expired,
            "invalid": tally.invalid,
        },
    )
    return 1 if tally.invalid else 0


def _write(
    server: Server,
    batch: Sequence[Record],
    header: Header,
    args: argparse.Namespace,
    sha: str | None,
    tally: _Tally,
) -> None:
    if not batch:
        return
    now = _server_ms(server)
    live = [r for r in batch if r.expire_at_ms is None or r.expire_at_ms > now]
    tally.expired += len(batch) - len(live)
    if args.dry_run:
        tally.written += len(live)
        return
    replies: list[Any] = []
    for node, positions in server.by_node([record.key for record in live]):
        with node.pipeline(transaction=False) as pipe:
            for record in (live[i] for i in positions):
                if record.dump is not None:
                    options = ["ABSTTL", *(["REPLACE"] if args.replace else [])]
                    ttl = record.expire_at_ms or 0
                    pipe.execute_command("RESTORE", record.key, ttl, record.dump, *options)  # type: ignore[no-untyped-call]
                else:
                    assert sha is not None  # loaded unless a dry run
                    pipe.evalsha(sha, 1, record.key, *restore_arguments(record, args.replace))
            replies.extend(pipe.execute(raise_on_error=False))
    for reply in replies:
        if isinstance(reply, redis.ResponseError):
            if "BUSYKEY" not in str(reply):
                raise reply
            tally.existing += 1
        elif reply in (0, b"0"):
            tally.existing += 1
        else:
            tally.written += 1


def verify(server: Server, args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise InvalidInputError(f"{path}: no such file")
    header, _ = _check(path, partial=False)
    _, records = _records(path, False, _Tally())
    counts = {"same": 0, "missing": 0, "different": 0, "expired": 0}
    problems: list[dict[str, Any]] = []
    progress = Progress("verified")
    batch: list[Record] = []

    def compare() -> None:
        now = _server_ms(server)
        current = {r.key: r for r in read_keys(server, [r.key for r in batch], header.dump)}
        for record in batch:
            found = current.get(record.key)
            why = _difference(record, found, header.dump, now)
            if why is None:
                counts["same"] += 1
            else:
                counts[why[0]] += 1
                if why[0] != "expired" and len(problems) < 20:
                    problems.append(
                        {"key": record.key.decode("utf-8", "replace"), "problem": why[1]}
                    )
        progress.advance(len(batch), " keys")

    for record in records:
        batch.append(record)
        if len(batch) == RESTORE_BATCH:
            compare()
            batch = []
    if batch:
        compare()
    progress.done(", ".join(f"{v:,} {k}" for k, v in counts.items()))
    if args.json:
        emit_json({"file": str(path), **counts, "problems": problems})
    else:
        table(("verdict", "keys"), list(counts.items()))
        if problems:
            print()
            table(("key", "problem"), [(p["key"], p["problem"]) for p in problems])
    return 0 if counts["missing"] == counts["different"] == 0 else 1


def _difference(record: Record, found: Read | None, dump: bool, now: int) -> tuple[str, str] | None:
    """None if the server holds ``record`` as exported, else (verdict, why)."""
    if record.expire_at_ms is not None and record.expire_at_ms <= now:
        return ("expired", "expired since the export") if found is None else None
    if found is None:
        return "missing", "not on the server"
    if found.type != record.type:
        return "different", f"a {found.type} on the server, a {record.type} in the file"
    if not dump and decode_value(record.type, encode_value(found.type, found.raw)) != record.value:
        return "different", "another value"
    if isinstance(found.raw, StreamRead) and tuple(found.raw.groups) != record.groups:
        return "different", "other consumer groups"
    if (found.expire_at_ms is None) != (record.expire_at_ms is None):
        return "different", "the TTL was set or removed"
    if record.expire_at_ms is not None and found.expire_at_ms is not None:
        drift = abs(found.expire_at_ms - record.expire_at_ms)
        if drift > TTL_TOLERANCE_MS:
            return "different", f"expires {drift / 1000:.1f} s apart"
    return None


def _summary(args: argparse.Namespace, document: dict[str, Any]) -> None:
    if args.json:
        emit_json(document)
    else:
        rows = [(k, ", ".join(v) if isinstance(v, list) else v) for k, v in document.items()]
        table(("field", "value"), rows)
