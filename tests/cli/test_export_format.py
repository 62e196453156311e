"""The export format (pure): every type's value round-trips exactly (binary, infinities,
stream ids), and every malformed line is refused naming its number."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arketic_cache import ExportFormatError
from arketic_cache._core import _export as fmt

blobs = st.binary(max_size=40)
STREAM = '{"key": "k", "type": "stream", "expire_at_ms": null, "value": %s}'


@given(st.dictionaries(blobs, blobs, min_size=1), st.lists(blobs, min_size=1))
def test_hashes_and_lists_round_trip(fields: dict[bytes, bytes], items: list[bytes]) -> None:
    assert fmt.decode_value("hash", fmt.encode_value("hash", fields)) == sorted(fields.items())
    assert fmt.decode_value("list", fmt.encode_value("list", items)) == items


@given(st.lists(st.tuples(blobs, st.floats(allow_nan=False)), min_size=1))
def test_zset_scores_are_exact(members: list[tuple[bytes, float]]) -> None:
    line = fmt.record_line(b"z", "zset", None, members)
    record = fmt.parse_record(line, 2, dump=False)
    assert record.value == members  # the repr of a double reads back as the same double


def test_infinite_scores_are_named() -> None:
    value = fmt.encode_value("zset", [(b"a", math.inf), (b"b", -math.inf)])
    assert value == [["a", "inf"], ["b", "-inf"]]
    record = fmt.parse_record(fmt.record_line(b"z", "zset", 5, [(b"a", math.inf)]), 2, False)
    assert fmt.restore_arguments(record, False) == ["keep", "zset", 5, "inf", b"a"]


def test_binary_is_base64_and_text_is_text() -> None:
    line = json.loads(fmt.record_line(b"k\xff", "string", None, b"caf\xc3\xa9"))
    assert line["key"] == {"base64": "a/8="}
    assert line["value"] == "café"


def test_stream_entries_keep_their_ids() -> None:
    raw = [(b"1-1", {b"f": b"v"}), (b"1-2", {b"g": b"\xff"})]
    record = fmt.parse_record(fmt.record_line(b"s", "stream", None, raw), 2, dump=False)
    assert record.value == [("1-1", [(b"f", b"v")]), ("1-2", [(b"g", b"\xff")])]
    assert fmt.restore_arguments(record, True)[3:] == [
        2, "1-1", 1, b"f", b"v", "1-2", 1, b"g", b"\xff", 0, ""
    ]  # fmt: skip


def test_header_and_end() -> None:
    header = fmt.parse_header(fmt.header_line("7.0.15", 12, "user:*", False))
    assert (header.version, header.pattern, header.dump) == (1, "user:*", False)
    assert fmt.parse_end(fmt.end_line(3), 5) == 3
    assert fmt.parse_end(fmt.record_line(b"k", "string", None, b"v"), 5) is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("[1]", "line 7: not a JSON object"),
        ('{"key": "k", "type": "string", "expire_at_ms": -1, "value": "v"}', "expire_at_ms"),
        ('{"key": "k", "type": "list", "expire_at_ms": null, "value": []}', "non-empty"),
        (STREAM % '[["2-0", [["f", "v"]]], ["1-0", [["f", "v"]]]]', "must increase"),
        (STREAM % '[["x", [["f", "v"]]]]', "'ms-seq'"),
        ('{"key": "k", "type": "hash", "expire_at_ms": null, "value": [["f"]]}', "not a pair"),
        ('{"key": "k", "type": "string", "expire_at_ms": null}', "no value"),
        ('{"key": 5, "type": "string", "expire_at_ms": null, "value": "v"}', "the key is not"),
    ],
)  # fmt: skip
def test_malformed_records_name_their_line(line: str, message: str) -> None:
    with pytest.raises(ExportFormatError) as refused:
        fmt.parse_record(line, 7, dump=False)
    assert message in str(refused.value)
    assert refused.value.line == 7


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"format": "other"}', "not an arketic-export file"),
        (
            '{"format": "arketic-export", "version": 2, "exported_at_ms": 1, "pattern": "*"}',
            "newer",
        ),
        ('{"format": "arketic-export", "version": "1"}', "positive int"),
        ('{"format": "arketic-export", "version": 1}', "lacks"),
    ],
)
def test_bad_headers(line: str, message: str) -> None:
    with pytest.raises(ExportFormatError, match=message):
        fmt.parse_header(line)


def test_restore_arguments_by_type() -> None:
    def args(kind: Any, raw: Any) -> list[Any]:
        return fmt.restore_arguments(
            fmt.parse_record(fmt.record_line(b"k", kind, None, raw), 2, False), False
        )

    assert args("string", b"v") == ["keep", "string", "", b"v"]
    assert args("hash", {b"f": b"v"}) == ["keep", "hash", "", b"f", b"v"]
    assert args("set", {b"b", b"a"}) == ["keep", "set", "", b"a", b"b"]
