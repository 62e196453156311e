"""Every command in process (``main(argv)``) on the embedded backend and a real server: exit
codes, ``--json`` parsed back, the round trip of all six types, and bad input refused with a
one-line error that leaves the server unchanged."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from arketic_cache._cli import main
from arketic_cache.testing import ClusterTopology, RedisServer

from ..helpers import cluster_url, flush_cluster
from .helpers import TTLS, client, populate, same_within_a_second, snapshot


@pytest.fixture
def target_url(backend_url: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty second database: another embedded server, or db 1 of the real one (for a
    cluster, which has one database, db 1 of the harness' server: the way back to one)."""
    if backend_url.startswith("memory://"):
        yield backend_url + "-target"
        return
    if backend_url.startswith("redis+cluster://"):
        backend_url = request.getfixturevalue("redis_server").url
    base, _, query = backend_url.partition("?")
    url = base.rsplit("/", 1)[0] + "/1" + (f"?{query}" if query else "")
    with client(url) as admin:
        admin.flushdb()  # db 1 of our own throwaway server (or sentinels' primary)
    yield url


def exported(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """The fixture keys written to ``url`` and exported to a file."""
    populate(url)
    file = tmp_path / "all.jsonl"
    assert run(capsys, "export", "*", "-o", str(file), "--url", url)[0] == 0
    return file


#: The end record's line: the header, then a record per key.
END = len(TTLS) + 2


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    code, out, _ = run(capsys, *argv, "--json")
    return code, json.loads(out)


def test_export_then_restore_gives_the_same_keys_values_types_and_ttls(
    backend_url: str, target_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    populate(backend_url)
    file = tmp_path / "all.jsonl"
    code, exported = run_json(capsys, "export", "*", "-o", str(file), "--url", backend_url)
    assert (code, exported["keys"]) == (0, len(TTLS))
    code, restored = run_json(capsys, "restore", str(file), "--url", target_url)
    assert code == 0
    assert (restored["written"], restored["existing"], restored["expired"]) == (len(TTLS), 0, 0)
    assert same_within_a_second(snapshot(backend_url), snapshot(target_url))
    code, verified = run_json(capsys, "verify", str(file), "--url", target_url)
    assert (code, verified["same"], verified["missing"], verified["different"]) == (
        0,
        len(TTLS),
        0,
        0,
    )


def test_a_restore_run_again_keeps_what_is_there_or_replaces_it(
    backend_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = exported(backend_url, tmp_path, capsys)
    with client(backend_url) as r:
        r.set(b"user:1:profile", b"changed", ex=60)
    code, again = run_json(capsys, "restore", str(file), "--url", backend_url)
    assert (code, again["written"], again["existing"]) == (0, 0, len(TTLS))
    with client(backend_url) as r:
        assert r.get(b"user:1:profile") == b"changed"
    code, replaced = run_json(capsys, "restore", str(file), "--replace", "--url", backend_url)
    assert (code, replaced["written"]) == (0, len(TTLS))
    with client(backend_url) as r:
        assert r.get(b"user:1:profile") == b'{"name": "Ada"}'
        assert 598 <= r.ttl(b"user:1:profile") <= 600


def test_verify_names_what_differs(
    backend_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = exported(backend_url, tmp_path, capsys)
    with client(backend_url) as r:
        r.delete(b"chat:1:messages")
        r.sadd(b"chat:1:participants", b"linus")
        r.expire(b"user:1:profile", 30)
        r.xgroup_setid(b"events:1", b"mailer", b"1700000000000-7")
    code, verdict = run_json(capsys, "verify", str(file), "--url", backend_url)
    assert code == 1
    assert (verdict["same"], verdict["missing"], verdict["different"]) == (len(TTLS) - 4, 1, 3)
    problems = {p["key"]: p["problem"] for p in verdict["problems"]}
    assert problems["chat:1:participants"] == "another value"
    assert "apart" in problems["user:1:profile"]
    assert problems["events:1"] == "other consumer groups"


def corrupt(file: Path, line: int, text: str) -> None:
    lines = file.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[line - 1] = text
    file.write_text("".join(lines), encoding="utf-8")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ((3, '{"key": "x", "type": "string"'), "line 3: not JSON"),
        ((4, '{"key": "x", "type": "blob", "expire_at_ms": null, "value": "v"}\n'), "line 4:"),
        ((2, '{"key": {"base64": "!!"}, "type": "string", "expire_at_ms": null, "value": "v"}\n'),
         "line 2: the key is not valid base64"),
        ((1, '{"format": "arketic-export", "version": 9, "exported_at_ms": 1, "pattern": "*"}\n'),
         "line 1: format version 9 is newer"),
        ((END, ""), f"line {END}: no end record: the file is truncated"),
    ],
)  # fmt: skip
def test_a_bad_file_is_refused_whole_naming_its_line(
    backend_url: str,
    target_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    damage: tuple[int, str],
    message: str,
) -> None:
    file = exported(backend_url, tmp_path, capsys)
    corrupt(file, *damage)
    code, _, err = run(capsys, "restore", str(file), "--url", target_url)
    assert code == 1
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert snapshot(target_url) == {}  # nothing half-written


def test_a_file_cut_mid_line_is_truncated(
    backend_url: str, target_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = exported(backend_url, tmp_path, capsys)
    file.write_bytes(file.read_bytes()[:-30])
    code, _, err = run(capsys, "restore", str(file), "--url", target_url)
    assert code == 1
    last_record = END - 1
    assert f"line {last_record}: cut short (no line end): the file is truncated" in err
    assert snapshot(target_url) == {}


def test_partial_writes_the_valid_records_and_names_the_rest(
    backend_url: str, target_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = exported(backend_url, tmp_path, capsys)
    corrupt(
        file, 3, '{"key": "x", "type": "zset", "expire_at_ms": null, "value": [["m", "nan"]]}\n'
    )
    code, report = run_json(capsys, "restore", str(file), "--partial", "--url", target_url)
    assert code == 1  # something was left out
    assert report["written"] == len(TTLS) - 1
    assert report["invalid"] == ["line 3: a score is a number, 'inf' or '-inf', not 'nan'"]


def test_expired_keys_are_skipped_and_counted(
    backend_url: str, target_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    populate(backend_url)
    file = tmp_path / "all.jsonl"
    run(capsys, "export", "user:*", "-o", str(file), "--url", backend_url)
    lines = file.read_text(encoding="utf-8").splitlines(keepends=True)
    record = json.loads(lines[1])
    record["expire_at_ms"] = 1000  # long gone
    lines[1] = json.dumps(record) + "\n"
    file.write_text("".join(lines), encoding="utf-8")
    code, report = run_json(capsys, "restore", str(file), "--url", target_url)
    assert (code, report["written"], report["expired"]) == (0, 1, 1)
    assert len(snapshot(target_url)) == 1


def test_restore_of_dump_payloads_is_refused_on_memory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "dump.jsonl"
    file.write_text(
        '{"format":"arketic-export","version":1,"exported_at_ms":1,"pattern":"*","dump":true}\n'
        '{"key":"k","type":"string","expire_at_ms":null,"dump":"AAAA"}\n{"end":true,"keys":1}\n',
        encoding="utf-8",
    )
    code, _, err = run(capsys, "restore", str(file), "--url", "memory://cli-dump")
    assert code == 1
    assert "line 1: a file of DUMP payloads is never restored on memory://" in err
    code, _, err = run(capsys, "export", "*", "--dump", "-o", str(file), "--url", "memory://x")
    assert code == 1
    assert "--dump on memory://" in err


@pytest.mark.redis
def test_dump_payloads_round_trip_on_a_real_server(
    redis_server: RedisServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = redis_server.url.rsplit("/", 1)[0] + "/2"
    target = redis_server.url.rsplit("/", 1)[0] + "/3"
    for url in (source, target):
        with redis.Redis.from_url(url) as admin:
            admin.flushdb()  # dbs of our own throwaway server
    populate(source)
    file = tmp_path / "dump.jsonl"
    assert run(capsys, "export", "*", "--dump", "-o", str(file), "--url", source)[0] == 0
    code, report = run_json(capsys, "restore", str(file), "--url", target)
    assert (code, report["written"]) == (0, len(TTLS))
    assert same_within_a_second(snapshot(source), snapshot(target))
    code, again = run_json(capsys, "restore", str(file), "--url", target)
    assert (code, again["existing"]) == (0, len(TTLS))


def test_keys_lists_type_ttl_and_a_schema(
    backend_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    populate(backend_url)
    code, listed = run_json(capsys, "keys", "user:*", "--url", backend_url)
    assert code == 0
    assert [(k["key"], k["type"]) for k in listed] == [
        ("user:1:preferences", "hash"),
        ("user:1:profile", "string"),
    ]
    assert 500 < listed[1]["ttl_s"] <= 600
    code, by_schema = run_json(capsys, "keys", "--schema", "UserProfileKey", "--url", backend_url)
    assert [k["key"] for k in by_schema] == ["user:1:profile"]
    code, limited = run_json(capsys, "keys", "*", "--limit", "2", "--url", backend_url)
    assert len(limited) == 2


def test_analyze_groups_by_schema_and_finds_keys_without_ttl(
    backend_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    populate(backend_url)
    with client(backend_url) as r:
        r.set(b"user:2:profile", b"{}")  # no TTL: the rules forbid it
    code, report = run_json(capsys, "analyze", "--url", backend_url)
    assert code == 0
    groups = {g["group"]: g for g in report["groups"]}
    assert groups["UserProfileKey"]["keys"] == 2
    assert groups["UserProfileKey"]["without_ttl"] == 1
    assert groups["events:*"]["without_ttl"] == 1
    assert report["without_ttl"] == 2
    assert report["scanned"] == len(TTLS) + 1
    code, by_prefix = run_json(capsys, "analyze", "--by", "prefix", "--url", backend_url)
    assert {g["group"] for g in by_prefix["groups"]} >= {"user:*:profile", "chat:*:messages"}
    code, bounded = run_json(capsys, "analyze", "--budget", "3", "--url", backend_url)
    assert (bounded["scanned"], bounded["budget_reached"]) == (3, True)


def test_flush_counts_asks_and_refuses_everything(
    backend_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    populate(backend_url)
    code, dry = run_json(capsys, "flush", "user:*", "--url", backend_url)
    assert (code, dry["matched"], dry["deleted"]) == (0, 2, 0)  # not a terminal: nothing asked
    code, _, err = run(capsys, "flush", "*", "--yes", "--url", backend_url)
    assert code == 1
    assert "pass --all" in err
    code, done = run_json(capsys, "flush", "user:*", "--yes", "--url", backend_url)
    assert (code, done["deleted"]) == (0, 2)
    assert len(snapshot(backend_url)) == len(TTLS) - 2
    code, everything = run_json(capsys, "flush", "*", "--all", "--yes", "--url", backend_url)
    assert (code, everything["deleted"]) == (0, len(TTLS) - 2)


def test_health_and_info(backend_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = run_json(capsys, "health", "--url", backend_url)
    # The hit rate is this process' (other tests' misses may make it a warning); no check of
    # the server itself warns (unknown: what memory:// cannot tell), and the exit code
    # follows the level.
    server = {name: c["level"] for name, c in report["checks"].items() if name != "hit_rate"}
    assert set(server.values()) <= {"ok", "unknown"}, server
    assert server["connection"] == "ok"
    assert code == {"ok": 0, "warning": 1}[report["level"]]
    code, info = run_json(capsys, "info", "--url", backend_url)
    assert code == 0
    assert info["backend"] == ("memory" if backend_url.startswith("memory") else "redis")
    code, out, _ = run(capsys, "health", "--url", backend_url)
    assert out.startswith(f"{report['level'].upper()}: ")


@pytest.mark.parametrize(
    "argv",
    [
        ["keys", "x" * 5000],
        ["flush"],
        ["keys", "--schema", "NoSuchKey"],
        ["analyze", "--schemas", "no.such.module"],
        ["restore", "/no/such/file.jsonl"],
    ],
)
def test_bad_input_is_one_line_and_exit_1(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, *argv, "--url", "memory://cli-bad-input")
    assert code == 1
    assert err.count("\n") == 1
    assert err.startswith("arketic-cache: error: ")


def test_a_usage_error_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["health", "--no-such-option"])
    assert exited.value.code == 3


def test_schemas_of_the_users_own_module(
    backend_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "shop_keys.py").write_text(
        "from arketic_cache import TTL, StringKey\n\n\n"
        "class CartKey(StringKey[dict[str, int]]):\n"
        "    template = 'shop:cart:{cart_id}'\n"
        "    ttl = TTL.DEFAULT\n"
        "    cart_id: str\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with client(backend_url) as r:
        r.set(b"shop:cart:7", b"{}", ex=60)
        r.set(b"shop:cart:8", b"{}")
    code, listed = run_json(
        capsys, "keys", "--schema", "CartKey", "--schemas", "shop_keys", "--url", backend_url
    )
    assert (code, [k["key"] for k in listed]) == (0, ["shop:cart:7", "shop:cart:8"])
    code, report = run_json(capsys, "analyze", "--schemas", "shop_keys", "--url", backend_url)
    groups = {g["group"]: g for g in report["groups"]}
    assert (groups["CartKey"]["keys"], groups["CartKey"]["without_ttl"]) == (2, 1)


def test_big_values_round_trip_in_chunks(
    backend_url: str, target_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Values longer than one script call's chunk (1000 arguments) are written whole."""
    with client(backend_url) as r:
        r.rpush(b"big:list", *[f"item-{n}".encode() for n in range(5001)])
        r.hset(b"big:hash", mapping={f"f{n}".encode(): f"v{n}".encode() for n in range(2999)})
        r.zadd(b"big:zset", {f"m{n}".encode(): n / 7 for n in range(1501)})
        with r.pipeline(transaction=False) as pipe:
            for n in range(1, 1202):
                pipe.xadd(b"big:stream", {b"n": str(n).encode(), b"m": b"x"}, id=f"{n}-0")
            pipe.execute()
    file = tmp_path / "big.jsonl"
    assert run(capsys, "export", "big:*", "-o", str(file), "--url", backend_url)[0] == 0
    code, report = run_json(capsys, "restore", str(file), "--url", target_url)
    assert (code, report["written"]) == (0, 4)
    assert same_within_a_second(snapshot(backend_url), snapshot(target_url))


@pytest.mark.redis
@pytest.mark.cluster
@pytest.mark.parametrize("dump", [False, True], ids=["typed", "dump"])
def test_a_server_moves_to_a_cluster_by_export_and_restore(
    redis_server: RedisServer,
    cluster_topology: ClusterTopology,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    dump: bool,
) -> None:
    """The way from one server to a cluster: export there, restore here (every key routed
    to its slot's primary), verify; the same keys, values, types and TTLs."""
    backend_url = redis_server.url
    with client(backend_url) as admin:
        admin.flushdb()  # our own throwaway server
    flush_cluster(cluster_topology)
    cluster = cluster_url(cluster_topology)
    populate(backend_url)
    file = tmp_path / "all.jsonl"
    flags = ["--dump"] if dump else []
    assert run(capsys, "export", "*", "-o", str(file), *flags, "--url", backend_url)[0] == 0
    code, restored = run_json(capsys, "restore", str(file), "--url", cluster)
    assert (code, restored["written"]) == (0, len(TTLS))
    assert same_within_a_second(snapshot(backend_url), snapshot(cluster))
    code, verified = run_json(capsys, "verify", str(file), "--url", cluster)
    assert (code, verified["same"]) == (0, len(TTLS))
