"""Key schemas: the TTL table, the spec's catalogue, versions and hash tags."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import assume, given
from redis.crc import key_slot

from arketic_cache import (
    TTL,
    TTL_SECONDS,
    AIResponseKey,
    InvalidInputError,
    KeySchema,
    RateLimitIpKey,
    RedisType,
    stable_hash,
)
from arketic_cache._keys import escape_part

from .helpers import (
    CATALOGUE,
    ID_SCHEMAS,
    PROMPT_HASH,
    TYPES_AND_TTLS,
    Pair,
    TaggedPair,
    Unversioned,
    Version1,
    Version2,
    hostile_text,
    id_field,
    pure,
)


class TestTTLTable:
    """``TTL`` and ``TTL_SECONDS`` are the spec's TTL strategy table."""

    def test_table_holds_exactly_the_spec_values(self) -> None:
        """Every row has the spec's seconds, and there are no other rows."""
        assert dict(TTL_SECONDS) == {
            TTL.USER_SESSION: 3600,
            TTL.API_RESPONSE: 300,
            TTL.AI_RESPONSE: 3600,
            TTL.SEARCH_RESULT: 900,
            TTL.RATE_LIMIT_WINDOW: 60,
            TTL.TEMPORARY_LOCK: 30,
            TTL.DEFAULT: 3600,
        }
        assert set(TTL) == set(TTL_SECONDS)

    @pytest.mark.parametrize("row", list(TTL), ids=lambda row: row.name)
    def test_seconds_property_reads_the_table(self, row: TTL) -> None:
        """``TTL.X.seconds`` is the table's value."""
        assert row.seconds == TTL_SECONDS[row]

    def test_table_is_read_only(self) -> None:
        """Nobody can change a row at run time."""
        with pytest.raises(TypeError):
            TTL_SECONDS[TTL.API_RESPONSE] = 1  # type: ignore[index]

    def test_default_resolves_to_the_configured_ttl(self) -> None:
        """``DEFAULT`` follows the configured default TTL (RESPONSE_CACHE_TTL)."""
        assert TTL.DEFAULT.resolve(1234) == 1234

    @pytest.mark.parametrize(
        "row", [row for row in TTL if row is not TTL.DEFAULT], ids=lambda row: row.name
    )
    def test_other_rows_ignore_the_default(self, row: TTL) -> None:
        """Every fixed row resolves to its own seconds whatever the default is."""
        assert row.resolve(1234) == TTL_SECONDS[row]
        assert row.resolve(1) == TTL_SECONDS[row]


class TestCatalogue:
    """The predefined schemas render exactly as the spec writes its keys."""

    @pytest.mark.parametrize(("key", "expected"), CATALOGUE, ids=lambda v: str(v)[:40])
    def test_renders_as_the_spec_writes_it(self, key: KeySchema, expected: str) -> None:
        """``render()`` gives the spec's key, and ``parse`` gives the schema back."""
        assert key.render() == expected
        assert type(key).parse(expected).render() == expected

    def test_catalogue_covers_every_spec_key(self) -> None:
        """The table above names each of the spec's 23 key templates once, plus the refresh
        token families the session manager adds."""
        assert len({type(key) for key, _ in CATALOGUE}) == len(CATALOGUE) == 23 + 1
        assert {type(key) for key, _ in CATALOGUE} == {cls for cls, _, _ in TYPES_AND_TTLS}

    @pytest.mark.parametrize(("schema", "redis_type", "ttl"), TYPES_AND_TTLS, ids=str)
    def test_redis_type_and_ttl(
        self, schema: type[KeySchema], redis_type: RedisType, ttl: TTL
    ) -> None:
        """Each schema holds the Data Types table's type and a TTL strategy row."""
        assert schema.redis_type is redis_type
        assert schema.ttl is ttl
        assert isinstance(schema.ttl, TTL)
        assert schema.ttl in TTL_SECONDS

    @pytest.mark.parametrize(
        ("schema", "others"), ID_SCHEMAS, ids=lambda v: getattr(v, "__name__", "")
    )
    def test_int_and_str_ids_render_alike(
        self, schema: type[KeySchema], others: dict[str, Any]
    ) -> None:
        """``42`` and ``"42"`` give the same key, as the spec's f-strings would."""
        name = id_field(schema)
        as_int = schema.model_validate({name: 42, **others}).render()
        as_str = schema.model_validate({name: "42", **others}).render()
        assert as_int == as_str
        assert ":42" in as_int

    def test_ip_dots_are_not_escaped(self) -> None:
        """An IPv4 address keeps its dots: '.' is not syntax."""
        assert RateLimitIpKey(ip_address="192.168.1.254").render() == "rate:api:ip:192.168.1.254"

    @pytest.mark.parametrize(
        ("ip", "expected"),
        [
            ("::1", "rate:api:ip:%3A%3A1"),
            ("2001:db8::1", "rate:api:ip:2001%3Adb8%3A%3A1"),
            ("fe80::1%eth0", "rate:api:ip:fe80%3A%3A1%25eth0"),
        ],
    )
    def test_ipv6_colons_are_escaped_and_parse_back(self, ip: str, expected: str) -> None:
        """An IPv6 address's ':' is percent-encoded (it is the separator) and parses back."""
        key = RateLimitIpKey(ip_address=ip).render()
        assert key == expected
        assert key.count(":") == RateLimitIpKey.template.count(":")
        assert RateLimitIpKey.parse(key) == RateLimitIpKey(ip_address=ip)

    def test_prompt_hash_from_stable_hash(self) -> None:
        """``stable_hash`` makes the 32-hex ``{hash}`` part of the AI keys."""
        assert re.fullmatch(r"[0-9a-f]{32}", PROMPT_HASH)
        key = AIResponseKey(prompt_hash=stable_hash({"prompt": "Hello", "model": "gpt-4o"}))
        assert key.render() == f"ai:response:{PROMPT_HASH}"


class TestSchemaVersion:
    """``schema_version`` keeps keys of different value models apart."""

    def test_version_suffix(self) -> None:
        """schema_version=N appends ':vN' after the template."""
        assert Version2(a="x").render() == "v:x:v2"
        assert Version1(a="x").render() == "v:x:v1"
        assert Unversioned(a="x").render() == "v:x"

    def test_parse_accepts_only_its_own_version(self) -> None:
        """A schema parses its own version's keys and refuses the others'."""
        assert Version2.parse("v:x:v2") == Version2(a="x")
        for other in ("v:x", "v:x:v1", "v:x:v3", "v:x:v2:v2"):
            with pytest.raises(InvalidInputError):
                Version2.parse(other)
        with pytest.raises(InvalidInputError):
            Version1.parse("v:x:v2")
        with pytest.raises(InvalidInputError):
            Unversioned.parse("v:x:v2")  # 'x:v2' is not a part: parts never hold ':'

    @pure
    @given(hostile_text, hostile_text)
    def test_versions_never_share_a_key(self, a1: str, a2: str) -> None:
        """An unversioned, a v1 and a v2 schema on one template never render the same key."""
        keys = {Unversioned(a=a1).render(), Version1(a=a2).render(), Version2(a=a1).render()}
        assert len(keys) == 3
        assert Version2(a=a2).render() != Version1(a=a2).render()

    def test_pattern_keeps_the_version(self) -> None:
        """A versioned schema's pattern matches only keys of that version."""
        assert Version2.pattern() == "v:*:v2"
        assert Version2.pattern(a="x") == "v:x:v2"


class TestHashTag:
    """``hash_tag`` co-locates a tag value's keys in one cluster slot, whatever the ids hold."""

    def test_tagged_part_is_wrapped(self) -> None:
        """The tagged field's part, and only it, is wrapped in braces."""
        assert TaggedPair(a="1", b="42").render() == "t:1:{42}"
        assert TaggedPair.parse("t:1:{42}") == TaggedPair(a="1", b="42")
        assert TaggedPair.pattern(b="42") == "t:*:{42}"

    @pure
    @given(hostile_text, hostile_text, hostile_text)
    def test_same_tag_value_same_slot(self, a1: str, a2: str, tag: str) -> None:
        """Keys sharing a tag value share a slot, even when the ids or the tag hold braces."""
        assume(tag != "")  # the empty tag is its own test below
        k1 = TaggedPair(a=a1, b=tag).render()
        k2 = TaggedPair(a=a2, b=tag).render()
        assert key_slot(k1.encode()) == key_slot(k2.encode())

    @pytest.mark.parametrize("tag", ["{x}", "}{", "{}", "{", "x}", "{" * 200])
    @pytest.mark.parametrize("other", ["1", "{x}1", "{x}2", "{}", "}"])
    def test_hostile_braces_cannot_move_a_key(self, tag: str, other: str) -> None:
        """Braces in the ids are escaped: the slot is the tag value's, not attacker-chosen."""
        slot = key_slot(TaggedPair(a="plain", b=tag).render().encode())
        assert key_slot(TaggedPair(a=other, b=tag).render().encode()) == slot
        # '{x}1' and '{x}2' as untagged ids must not pin every key to the slot of 'x'.
        assert Pair(a=other, b=tag).render().count("{") == 0

    def test_slot_is_the_tag_contents_slot(self) -> None:
        """The slot is computed from the tag's contents only (the cluster spec's rule)."""
        for tag in ["42", "user-7", "ünï", "a:b", "*"]:
            key = TaggedPair(a="whatever", b=tag).render()
            assert key_slot(key.encode()) == key_slot(escape_part(tag).encode())

    def test_empty_tag_value_still_colocates(self) -> None:
        """An empty tag value must not render '{}' (which Redis ignores, hashing the whole key)."""
        k1 = TaggedPair(a="1", b="").render()
        k2 = TaggedPair(a="2", b="").render()
        assert key_slot(k1.encode()) == key_slot(k2.encode())

    def test_different_tag_values_usually_differ(self) -> None:
        """Different tag values spread over slots (a tag is not a constant)."""
        slots = {key_slot(TaggedPair(a="1", b=str(i)).render().encode()) for i in range(50)}
        assert len(slots) > 40
