"""The consumer-group and stream-following flows, stepped by hand: reply shapes, blocking in
chunks, BUSYGROUP, the claim script's reply, and trimming by the server's clock."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from arketic_cache import BackendResponseError
from arketic_cache._codec import ModelCodec
from arketic_cache._core import _stream_groups as flows
from arketic_cache._core._cache import CacheStats
from arketic_cache._core._effects import Command, Eval
from arketic_cache._lua import STREAM_CLAIM

from ..helpers import step


class Point(pydantic.BaseModel):
    x: int


POINTS = ModelCodec(Point, 1000)


@pytest.mark.parametrize(
    "reply",
    [
        [["st", [("1-0", {"x": "1"}), ("2-0", {"x": "2"})]]],
        {"st": [[("1-0", {"x": "1"}), ("2-0", {"x": "2"})]]},
    ],
    ids=["resp2", "resp3"],
)
def test_read_decodes_either_reply_shape(reply: Any) -> None:
    stats = CacheStats()
    effects, entries = step(flows.stream_read("st", POINTS, stats, "0-0", 10, None), [reply])
    assert effects == [Command(("XREAD", "COUNT", 10, "STREAMS", "st", "0-0"))]
    assert entries == [("1-0", Point(x=1)), ("2-0", Point(x=2))]


@pytest.mark.parametrize("reply", [None, [], {}])
def test_nothing_new_is_an_empty_list(reply: Any) -> None:
    assert step(flows.stream_read("st", POINTS, CacheStats(), "0-0", None, None), [reply])[1] == []


def test_a_blocking_read_waits_in_chunks_until_entries_come() -> None:
    flow = flows.group_read("st", "g", "c", POINTS, CacheStats(), 5, (3, 250))
    found = [["st", [("1-0", {"x": "1"})]]]
    effects, entries = step(flow, [None, found])
    read = Command(
        ("XREADGROUP", "GROUP", "g", "c", "COUNT", 5, "BLOCK", 250, "STREAMS", "st", ">")
    )
    assert effects == [read, read]
    assert entries == [("1-0", Point(x=1))]


def test_a_blocking_read_gives_up_after_its_chunks() -> None:
    effects, entries = step(
        flows.stream_read("st", POINTS, CacheStats(), "$", None, (2, 100)), [None, None]
    )
    assert len(effects) == 2
    assert entries == []


def test_undecodable_and_vanished_entries_are_skipped_and_counted() -> None:
    stats = CacheStats()
    reply = [["st", [("1-0", {"x": "no"}), ("2-0", None), ("3-0", {"x": "3"})]]]
    _, entries = step(flows.stream_read("st", POINTS, stats, "0-0", None, None), [reply])
    assert entries == [("3-0", Point(x=3))]
    assert stats.decode_errors == 1


def test_create_answers_false_on_busygroup_and_raises_other_errors() -> None:
    create = Command(("XGROUP", "CREATE", "st", "g", "$", "MKSTREAM"), errors_as_reply=True)
    effects, created = step(flows.group_create("st", "g", "$", 60), ["OK", 1])
    assert effects == [create, Command(("EXPIRE", "st", 60, "NX"))]
    assert created is True
    busy = BackendResponseError("BUSYGROUP Consumer Group name already exists")
    assert step(flows.group_create("st", "g", "$", 60), [busy]) == ([create], False)
    with pytest.raises(BackendResponseError, match="WRONGTYPE"):
        step(flows.group_create("st", "g", "$", 60), [BackendResponseError("WRONGTYPE")])


def test_claim_runs_the_script_and_reads_its_flat_entries() -> None:
    flow = flows.group_claim(
        "st", "g", "c", POINTS, CacheStats(),
        min_idle_ms=500, count=10, max_deliveries=3, dead_letter="dead", dead_letter_ttl=60,
    )  # fmt: skip
    effects, (entries, dead) = step(flow, [[2, ["5-0", ["x", "5"]]]])
    assert effects == [Eval(STREAM_CLAIM, ("st", "dead"), ("g", "c", 500, 10, 3, 60))]
    assert entries == [("5-0", Point(x=5))]
    assert dead == 2


def test_trim_by_age_computes_the_cut_from_the_servers_clock() -> None:
    effects, trimmed = step(
        flows.stream_trim("st", None, 60_000, True), [["1700000100", "250000"], 4]
    )
    assert effects == [Command(("TIME",)), Command(("XTRIM", "st", "MINID", "~", 1700000040250))]
    assert trimmed == 4


def test_pending_reads_the_summary_of_either_protocol() -> None:
    assert step(flows.group_pending("st", "g"), [[3, "1-0", "3-0", [["c", "3"]]]])[1] == 3
    assert step(flows.group_pending("st", "g"), [{"pending": 2}])[1] == 2
    assert step(flows.group_ack("st", "g", ("1-0",)), [1]) == (
        [Command(("XACK", "st", "g", "1-0"))],
        1,
    )
