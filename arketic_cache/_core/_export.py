"""The export file format (pure): versioned JSON lines, one typed record per key.

Line 1 is the header, then one record per key, then the end record (a file without it was
cut short); each is one line (the header is wrapped here)::

    {"format": "arketic-export", "version": 1, "redis_version": "7.0.15",
     "exported_at_ms": 1767225000000, "pattern": "user:*", "dump": false}
    {"key": "user:1:profile", "type": "string", "expire_at_ms": 1767225600000, "value": "{}"}
    {"end": true, "keys": 1}

A byte string (key, value, field, member) is a JSON string when it is UTF-8, else
``{"base64": "..."}``, so every value round-trips exactly. Values by type: ``string`` one byte
string; ``hash`` ``[[field, value], ...]``; ``list`` ``[item, ...]`` in order; ``set``
``[member, ...]``; ``zset`` ``[[member, score], ...]`` with scores as JSON numbers (exact: the
shortest repr of the double) or ``"inf"``/``"-inf"``; ``stream`` ``[[id, [[field, value],
...]], ...]`` with the entry ids kept, and beside the value ``groups`` (``[[name,
last_delivered_id], ...]``: consumer groups resume where they were; their pending entries
are not kept) and ``last_id`` (the stream's last generated id). With ``dump``, a record
holds ``"dump": base64`` (Redis'
``DUMP`` payload) instead of ``value``. ``expire_at_ms`` is absolute (the server's clock), or
null for a key without a TTL.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .._exceptions import ExportFormatError

__all__ = [
    "FORMAT",
    "TYPES",
    "VERSION",
    "Header",
    "Record",
    "StreamRead",
    "decode_bytes",
    "encode_bytes",
    "end_line",
    "header_line",
    "parse_end",
    "parse_header",
    "parse_line",
    "parse_record",
    "record_line",
    "restore_arguments",
]

FORMAT = "arketic-export"
VERSION = 1
TYPES = ("string", "hash", "list", "set", "zset", "stream")
KeyType = Literal["string", "hash", "list", "set", "zset", "stream"]
_STREAM_ID = re.compile(r"^(\d{1,20})-(\d{1,20})$")


@dataclass(frozen=True, slots=True)
class Header:
    """What line 1 says about the file."""

    version: int
    redis_version: str
    exported_at_ms: int
    pattern: str
    dump: bool


@dataclass(frozen=True, slots=True)
class Record:
    """One key as exported: ``value`` decoded to bytes (see ``parse_record``), or ``dump``;
    a stream's consumer groups ``(name, last delivered id)`` and last generated id."""

    key: bytes
    type: KeyType
    expire_at_ms: int | None
    value: Any = None
    dump: bytes | None = None
    groups: tuple[tuple[bytes, str], ...] = ()
    last_id: str | None = None


@dataclass(frozen=True, slots=True)
class StreamRead:
    """A stream as read: its entries (redis-py's ``XRANGE`` reply), groups and last id."""

    entries: list[tuple[bytes, dict[bytes, bytes]]]
    groups: list[tuple[bytes, str]]
    last_id: str


def encode_bytes(data: bytes) -> str | dict[str, str]:
    """A JSON string if ``data`` is UTF-8, else ``{"base64": ...}``."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


def decode_bytes(value: Any, what: str) -> bytes:
    """The bytes ``encode_bytes`` made.

    Raises:
        ValueError: ``value`` is neither form.
    """
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    if isinstance(value, dict) and set(value) == {"base64"} and isinstance(value["base64"], str):
        try:
            return base64.b64decode(value["base64"], validate=True)
        except binascii.Error:
            raise ValueError(f"{what} is not valid base64") from None
    raise ValueError(f"{what} is not a string or {{'base64': ...}}")


def _score(score: float) -> float | str:
    if math.isinf(score):
        return "inf" if score > 0 else "-inf"
    return score


def _pairs(items: Sequence[tuple[bytes, bytes]]) -> list[list[Any]]:
    return [[encode_bytes(a), encode_bytes(b)] for a, b in items]


def encode_value(kind: KeyType, raw: Any) -> Any:
    """The JSON form of a value as redis-py (bytes, RESP2) returns it for ``kind``."""
    if kind == "string":
        return encode_bytes(raw)
    if kind == "hash":
        return _pairs(sorted(raw.items()))
    if kind == "list":
        return [encode_bytes(item) for item in raw]
    if kind == "set":
        return [encode_bytes(member) for member in sorted(raw)]
    if kind == "zset":
        return [[encode_bytes(member), _score(float(score))] for member, score in raw]
    entries = raw.entries if isinstance(raw, StreamRead) else raw
    return [
        [entry_id.decode("ascii"), _pairs(list(fields.items()))] for entry_id, fields in entries
    ]


def header_line(redis_version: str, exported_at_ms: int, pattern: str, dump: bool) -> str:
    header = {
        "format": FORMAT,
        "version": VERSION,
        "redis_version": redis_version,
        "exported_at_ms": exported_at_ms,
        "pattern": pattern,
        "dump": dump,
    }
    return json.dumps(header, separators=(",", ":"))


def record_line(
    key: bytes, kind: KeyType, expire_at_ms: int | None, raw: Any, dump: bytes | None = None
) -> str:
    """One record; ``raw`` is the value as read (ignored when ``dump`` is given)."""
    record: dict[str, Any] = {"key": encode_bytes(key), "type": kind, "expire_at_ms": expire_at_ms}
    if dump is None:
        record["value"] = encode_value(kind, raw)
        if isinstance(raw, StreamRead):
            record["groups"] = [[encode_bytes(name), last] for name, last in raw.groups]
            record["last_id"] = raw.last_id
    else:
        record["dump"] = base64.b64encode(dump).decode("ascii")
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def end_line(keys: int) -> str:
    return json.dumps({"end": True, "keys": keys}, separators=(",", ":"))


def _load(line: str, number: int) -> dict[str, Any]:
    try:
        document = json.loads(line)
    except ValueError as exc:
        raise ExportFormatError(f"not JSON ({exc.args[0].split(':')[0]})", number) from None
    if not isinstance(document, dict):
        raise ExportFormatError("not a JSON object", number)
    return document


def parse_header(line: str) -> Header:
    """Line 1.

    Raises:
        ExportFormatError: not an export header, or a newer format version.
    """
    document = _load(line, 1)
    if document.get("format") != FORMAT:
        raise ExportFormatError(f"not an {FORMAT} file", 1)
    version = document.get("version")
    if type(version) is not int or version < 1:
        raise ExportFormatError(f"the format version {version!r} is not a positive int", 1)
    if version > VERSION:
        raise ExportFormatError(
            f"format version {version} is newer than this arketic_cache reads ({VERSION})", 1
        )
    exported, pattern = document.get("exported_at_ms"), document.get("pattern")
    if type(exported) is not int or not isinstance(pattern, str):
        raise ExportFormatError("the header lacks exported_at_ms or pattern", 1)
    return Header(
        version,
        str(document.get("redis_version", "?")),
        exported,
        pattern,
        document.get("dump") is True,
    )


def parse_end(line: str, number: int) -> int | None:
    """The key count of an end record, or None if ``line`` is not one.

    Raises:
        ExportFormatError: not JSON.
    """
    return _end_of(_load(line, number), number)


def parse_line(line: str, number: int, dump: bool) -> Record | int:
    """A record, or the key count of the end record (each line is decoded once).

    Raises:
        ExportFormatError: anything that does not fit, naming line ``number``.
    """
    document = _load(line, number)
    ended = _end_of(document, number)
    return _record_of(document, number, dump) if ended is None else ended


def _end_of(document: dict[str, Any], number: int) -> int | None:
    if document.get("end") is not True:
        return None
    count = document.get("keys")
    if type(count) is not int or count < 0:
        raise ExportFormatError("the end record's key count is not a count", number)
    return count


def _pair_list(value: Any, what: str) -> list[tuple[bytes, bytes]]:
    if not isinstance(value, list):
        raise ValueError(f"{what} is not a list of pairs")
    pairs = []
    for item in value:
        if not isinstance(item, list) or len(item) != 2:
            raise ValueError(f"{what} holds something that is not a pair")
        pairs.append((decode_bytes(item[0], what), decode_bytes(item[1], what)))
    return pairs


def _decode_score(score: Any) -> float:
    if score in ("inf", "+inf"):
        return math.inf
    if score == "-inf":
        return -math.inf
    if type(score) not in (int, float) or math.isnan(score):
        raise ValueError(f"a score is a number, 'inf' or '-inf', not {score!r}")
    return float(score)


def _stream_id(entry_id: Any) -> tuple[int, int]:
    match = _STREAM_ID.fullmatch(entry_id) if isinstance(entry_id, str) else None
    if match is None:
        raise ValueError(f"a stream entry id is 'ms-seq', not {entry_id!r}")
    return int(match[1]), int(match[2])


def decode_value(kind: KeyType, value: Any) -> Any:
    """The value of a record as Python data: bytes; hash and stream fields as pairs;
    zset ``[(member, score)]``; stream ``[(id, [(field, value)])]`` with ids increasing.

    Raises:
        ValueError: the value does not have the type's form.
    """
    if kind == "string":
        return decode_bytes(value, "the value")
    if kind == "hash":
        pairs = _pair_list(value, "the hash")
        if not pairs:
            raise ValueError("a hash has at least one field")
        return pairs
    if kind in ("list", "set"):
        if not isinstance(value, list) or not value:
            raise ValueError(f"a {kind} is a non-empty list")
        return [decode_bytes(item, f"a {kind} item") for item in value]
    if kind == "zset":
        if not isinstance(value, list) or not value:
            raise ValueError("a zset is a non-empty list of [member, score]")
        members = []
        for item in value:
            if not isinstance(item, list) or len(item) != 2:
                raise ValueError("a zset item is [member, score]")
            members.append((decode_bytes(item[0], "a zset member"), _decode_score(item[1])))
        return members
    if not isinstance(value, list):
        raise ValueError("a stream is a list of [id, fields]")
    entries, last = [], (0, 0)
    for item in value:
        if not isinstance(item, list) or len(item) != 2:
            raise ValueError("a stream entry is [id, fields]")
        entry_id = _stream_id(item[0])
        if entry_id <= last:
            raise ValueError(f"stream entry ids must increase: {item[0]} after {last}")
        fields = _pair_list(item[1], "a stream entry")
        if not fields:
            raise ValueError("a stream entry has at least one field")
        entries.append((item[0], fields))
        last = entry_id
    return entries


def _stream_extras(document: dict[str, Any]) -> tuple[tuple[tuple[bytes, str], ...], str | None]:
    groups = document.get("groups", [])
    if not isinstance(groups, list):
        raise ValueError("groups is a list of [name, last_delivered_id]")
    found = []
    for item in groups:
        if not isinstance(item, list) or len(item) != 2:
            raise ValueError("a consumer group is [name, last_delivered_id]")
        _stream_id(item[1])
        found.append((decode_bytes(item[0], "a group name"), item[1]))
    last_id = document.get("last_id")
    if last_id is not None:
        _stream_id(last_id)
    return tuple(found), last_id


def parse_record(line: str, number: int, dump: bool) -> Record:
    """A key's record, fully validated (``dump``: the header said payloads, not values).

    Raises:
        ExportFormatError: anything that does not fit, naming line ``number``.
    """
    return _record_of(_load(line, number), number, dump)


def _record_of(document: dict[str, Any], number: int, dump: bool) -> Record:
    kind, expire = document.get("type"), document.get("expire_at_ms")
    try:
        key = decode_bytes(document.get("key"), "the key")
        if kind not in TYPES:
            raise ValueError(f"the type is one of {', '.join(TYPES)}, not {kind!r}")
        if expire is not None and (type(expire) is not int or expire < 0):
            raise ValueError(f"expire_at_ms is a non-negative int or null, not {expire!r}")
        if dump:
            payload = document.get("dump")
            if not isinstance(payload, str):
                raise ValueError("a dump file's record holds 'dump'")
            return Record(key, kind, expire, dump=decode_bytes({"base64": payload}, "the dump"))
        if "value" not in document:
            raise ValueError("the record has no value")
        value = decode_value(kind, document["value"])
        if kind != "stream":
            return Record(key, kind, expire, value)
        groups, last_id = _stream_extras(document)
        if not value and not groups:
            raise ValueError("an empty stream is exported only with its consumer groups")
        return Record(key, kind, expire, value, groups=groups, last_id=last_id)
    except ValueError as exc:
        raise ExportFormatError(str(exc), number) from None


def _flat(pairs: Sequence[tuple[bytes, bytes]]) -> Iterator[bytes]:
    for a, b in pairs:
        yield a
        yield b


def restore_arguments(record: Record, replace: bool) -> list[bytes | str | int]:
    """ARGV of the restore script for ``record`` (see ``restore_key.lua``)."""
    args: list[bytes | str | int] = [
        "replace" if replace else "keep",
        record.type,
        "" if record.expire_at_ms is None else record.expire_at_ms,
    ]
    value = record.value
    if record.type == "string":
        args.append(value)
    elif record.type == "hash":
        args.extend(_flat(value))
    elif record.type in ("list", "set"):
        args.extend(value)
    elif record.type == "zset":
        for member, score in value:
            args.extend((repr(score) if math.isfinite(score) else str(score), member))
    else:
        args.append(len(value))
        for entry_id, fields in value:
            args.extend((entry_id, len(fields), *_flat(fields)))
        args.append(len(record.groups))
        for name, delivered in record.groups:
            args.extend((name, delivered))
        args.append(record.last_id or "")
    return args
