"""Rendering is injective and glob-safe for any input; patterns match exactly the keys they
should.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import pytest
from hypothesis import assume, given

from arketic_cache import (
    AIResponseKey,
    ChatMessagesKey,
    InvalidInputError,
    KBEmbeddingKey,
    KBSearchKey,
    KeySchema,
    RateLimitApiKey,
    UserPreferencesKey,
    UserProfileKey,
)
from arketic_cache._keys import MAX_PART_LENGTH, escape_part

from .helpers import (
    CATALOGUE,
    GLOB_CHARS,
    HASHED_PART,
    QUERY_HASH,
    MaybeKey,
    Pair,
    TaggedPair,
    hostile_text,
    is_hashed,
    pair_values,
    pure,
)


class TestRenderingProperties:
    """Whatever the parts hold, keys stay distinct, literal, and in the template's shape."""

    @pure
    @given(pair_values, pair_values)
    def test_distinct_parts_give_distinct_keys(
        self, first: tuple[str, str], second: tuple[str, str]
    ) -> None:
        """Rendering is injective: two different (a, b) pairs never share a key."""
        assume(first != second)
        assert Pair(a=first[0], b=first[1]).render() != Pair(a=second[0], b=second[1]).render()

    @pytest.mark.parametrize(
        ("first", "second"),
        [
            (("a:b", "c"), ("a", "b:c")),  # the research's namespace collision
            ((":", "x"), ("%3A", "x")),  # a separator vs its own escape
            (("%", "x"), ("%25", "x")),  # the escape char vs its escape
            (("", "x"), ("%N", "x")),  # empty vs the None marker
            (("#" + "0" * 32, "x"), ("x" * 200, "x")),  # a literal '#hash' vs a hashed part
            (("x" * 200, "y"), ("x" * 199 + "z", "y")),  # long parts differing at the end
            (("*", "x"), ("?", "x")),
        ],
    )
    def test_known_collisions_are_avoided(
        self, first: tuple[str, str], second: tuple[str, str]
    ) -> None:
        """Pairs that a naive f-string or a sloppy escape would render alike differ."""
        assert Pair(a=first[0], b=first[1]).render() != Pair(a=second[0], b=second[1]).render()

    @pure
    @given(hostile_text, hostile_text)
    def test_no_glob_or_brace_chars(self, a: str, b: str) -> None:
        """No part can act as a SCAN wildcard, a glob escape or a cluster hash tag."""
        key = Pair(a=a, b=b).render()
        assert not GLOB_CHARS & set(key)
        assert "{" not in key
        assert "}" not in key

    @pure
    @given(hostile_text, hostile_text)
    def test_no_control_chars(self, a: str, b: str) -> None:
        """No control character (Unicode category Cc: C0, DEL, C1) reaches the key."""
        key = Pair(a=a, b=b).render()
        assert [c for c in key if unicodedata.category(c) == "Cc"] == []

    @pure
    @given(hostile_text, hostile_text)
    def test_separator_count_is_the_templates(self, a: str, b: str) -> None:
        """A key has exactly the template's ':' separators, so no part can add a level."""
        key = Pair(a=a, b=b).render()
        assert key.count(":") == Pair.template.count(":") == 2
        assert key.startswith("t:")

    @pure
    @given(hostile_text, hostile_text)
    def test_parse_inverts_render_unless_hashed(self, a: str, b: str) -> None:
        """parse(render(k)) == k for short parts; hashed parts are '#'+32 hex and unparseable."""
        key = Pair(a=a, b=b)
        rendered = key.render()
        _, part_a, part_b = rendered.split(":")
        for value, part in ((a, part_a), (b, part_b)):
            if is_hashed(value):
                assert HASHED_PART.fullmatch(part)
            else:
                assert len(part) <= MAX_PART_LENGTH
                assert not part.startswith("#")
        if is_hashed(a) or is_hashed(b):
            with pytest.raises(InvalidInputError):
                Pair.parse(rendered)
        else:
            assert Pair.parse(rendered) == key

    @pure
    @given(hostile_text, hostile_text)
    def test_hash_tag_wraps_only_the_tagged_part(self, a: str, b: str) -> None:
        """With ``hash_tag="b"`` exactly one {...} pair appears, around b's escaped part."""
        key = TaggedPair(a=a, b=b).render()
        assert key.count("{") == key.count("}") == 1
        assert key.endswith("}")
        prefix, tagged = key.split("{")
        assert prefix == f"t:{escape_part(a)}:"
        assert tagged == escape_part(b) + "}"
        assert key.count(":") == 2
        if not (is_hashed(a) or is_hashed(b)):
            assert TaggedPair.parse(key) == TaggedPair(a=a, b=b)

    def test_hashed_part_shape(self) -> None:
        """A part over MAX_PART_LENGTH once escaped is '#' + 32 hex; parse refuses it."""
        at_limit = "x" * MAX_PART_LENGTH
        assert Pair(a=at_limit, b="y").render() == f"t:{at_limit}:y"
        over = Pair(a="x" * (MAX_PART_LENGTH + 1), b="y").render()
        assert re.fullmatch(r"t:#[0-9a-f]{32}:y", over)
        # 50 '*' escape to 150 chars: the escaped length decides, not the raw one.
        assert re.fullmatch(r"t:#[0-9a-f]{32}:y", Pair(a="*" * 50, b="y").render())
        with pytest.raises(InvalidInputError, match="hashed"):
            Pair.parse(over)

    @pytest.mark.parametrize("value", [None, "", "%N", "None", "null"])
    def test_none_is_distinct_and_parses_back(self, value: str | None) -> None:
        """An optional field's None renders unlike any string, and parses back to None."""
        key = MaybeKey(a=value).render()
        others = {MaybeKey(a=v).render() for v in [None, "", "%N", "None", "null"] if v != value}
        assert key not in others
        assert MaybeKey.parse(key) == MaybeKey(a=value)

    def test_lone_surrogate_is_invalid_input(self) -> None:
        """A str that is not valid Unicode (a lone surrogate) cannot be a key part."""
        with pytest.raises(InvalidInputError, match="Unicode"):
            Pair(a="x\ud800", b="y").render()

    def test_long_int_part_is_bounded(self) -> None:
        """An int part, too, is at most MAX_PART_LENGTH characters (hashed beyond it)."""
        key = UserProfileKey(user_id=10**200).render()
        part = key.split(":")[1]
        assert len(part) <= MAX_PART_LENGTH

    def test_huge_int_part_is_invalid_input_or_hashed(self) -> None:
        """An int too large for str() (over 4300 digits) never escapes as a bare ValueError."""
        try:
            key = UserProfileKey(user_id=10**5000).render()
        except InvalidInputError:
            return
        assert HASHED_PART.fullmatch(key.split(":")[1])

    @pytest.mark.parametrize(
        ("schema", "key"),
        [
            (UserProfileKey, "user:%41:profile"),  # 'A' needlessly escaped
            (UserProfileKey, "user:%4a:profile"),  # lower-case hex is never rendered
            (UserProfileKey, "user:%:profile"),  # a bare '%' is never rendered
            (KBEmbeddingKey, "kb:embedding:doc1:03"),  # an int with a leading zero
        ],
    )
    def test_parse_refuses_keys_render_never_makes(self, schema: type[KeySchema], key: str) -> None:
        """``parse`` returns "the schema instance that renders to key", so a key no instance
        renders to is refused rather than mapped onto a different key."""
        try:
            parsed = schema.parse(key)
        except InvalidInputError:
            return
        assert parsed.render() == key


HOSTILE_IDS = ["1", "12", "1*", "1?", "[1]", "1:x", "1\\", "{1}", "", "%", "%2A", "*", "x" * 300]


class TestPattern:
    """``Schema.pattern`` fixes the given fields (escaped) and wildcards the others."""

    def test_unknown_field(self) -> None:
        """A name that is not a field is refused."""
        with pytest.raises(InvalidInputError, match="no field"):
            UserProfileKey.pattern(chat_id=1)
        with pytest.raises(InvalidInputError, match="no field"):
            KBSearchKey.pattern(kb_id=1, query=QUERY_HASH)

    @pytest.mark.parametrize(
        ("schema", "fields"),
        [
            (UserProfileKey, {"user_id": None}),
            (UserProfileKey, {"user_id": 1.5}),
            (UserProfileKey, {"user_id": ["1"]}),
            (KBEmbeddingKey, {"chunk": "x"}),
            (KBEmbeddingKey, {"chunk": 1.5}),
            (AIResponseKey, {"prompt_hash": 123}),
        ],
        ids=repr,
    )
    def test_value_of_wrong_type(self, schema: type[KeySchema], fields: dict[str, Any]) -> None:
        """A value the field would not accept is refused, as the model would refuse it."""
        with pytest.raises(InvalidInputError):
            schema.pattern(**fields)

    @pytest.mark.parametrize(("key", "expected"), CATALOGUE, ids=lambda v: str(v)[:40])
    def test_all_fields_give_the_exact_key(self, key: KeySchema, expected: str) -> None:
        """With every field fixed the pattern is the key itself (no glob char to escape)."""
        assert type(key).pattern(**dict(key)) == expected

    def test_missing_fields_are_wildcards(self) -> None:
        """Each field not given becomes '*'; the template's text stays literal."""
        assert UserProfileKey.pattern() == "user:*:profile"
        assert KBSearchKey.pattern(kb_id=7) == "kb:7:search:*"
        assert KBSearchKey.pattern(query_hash=QUERY_HASH) == f"kb:*:search:{QUERY_HASH}"
        assert KBEmbeddingKey.pattern(chunk="3") == "kb:embedding:*:3"  # validated, then rendered
        assert RateLimitApiKey.pattern(user_id="1*") == "rate:api:1%2A:*"
        assert Pair.pattern(a="{x}") == "t:%7Bx%7D:*"

    @pytest.mark.parametrize("uid", HOSTILE_IDS, ids=repr)
    def test_patterns_hold_no_glob_syntax_but_their_wildcards(self, uid: str) -> None:
        """A fixed value never adds '*', '?', '[', ']' or '\\\\' to a pattern."""
        assert not GLOB_CHARS & set(UserProfileKey.pattern(user_id=uid))
        assert set(KBSearchKey.pattern(kb_id=uid)) & GLOB_CHARS == {"*"}
        assert KBSearchKey.pattern(kb_id=uid).count("*") == 1

    def test_get_keys_finds_exactly_each_users_key(self, cache: Any) -> None:
        """For each hostile id, the pattern finds that id's key and no other's."""
        keys = {uid: UserProfileKey(user_id=uid).render() for uid in HOSTILE_IDS}
        assert len(set(keys.values())) == len(HOSTILE_IDS)
        for uid, key in keys.items():
            assert cache.set(key, {"id": uid}) is True
            assert cache.set(UserPreferencesKey(user_id=uid).render(), {"theme": "dark"}) is True
        for uid, key in keys.items():
            assert cache.get_keys(UserProfileKey.pattern(user_id=uid)) == [key]
        assert cache.get_keys(UserProfileKey.pattern()) == sorted(keys.values())

    def test_get_keys_with_a_wildcard_field(self, cache: Any) -> None:
        """Fixing one field of two finds exactly that id's keys, whatever the other ids hold."""
        searches = {
            uid: sorted(KBSearchKey(kb_id=uid, query_hash=q).render() for q in ("q1", "q2", "*"))
            for uid in HOSTILE_IDS
        }
        for keys in searches.values():
            for key in keys:
                assert cache.set(key, [1]) is True
        for uid, keys in searches.items():
            assert cache.get_keys(KBSearchKey.pattern(kb_id=uid)) == keys

    def test_flush_pattern_deletes_only_that_ids_keys(self, cache: Any) -> None:
        """Flushing one id's pattern removes its keys and leaves every other id's keys."""
        chats = {uid: ChatMessagesKey(chat_id=uid).render() for uid in HOSTILE_IDS}
        limits = {
            uid: sorted(RateLimitApiKey(user_id=uid, endpoint=e).render() for e in ("chat", "*"))
            for uid in HOSTILE_IDS
        }
        everything = set(chats.values()) | {k for keys in limits.values() for k in keys}
        for key in everything:
            assert cache.set(key, 1) is True
        remaining = set(everything)
        for uid in HOSTILE_IDS:
            assert cache.flush_pattern(ChatMessagesKey.pattern(chat_id=uid)) == 1
            assert cache.flush_pattern(RateLimitApiKey.pattern(user_id=uid)) == 2
            remaining -= {chats[uid], *limits[uid]}
            assert set(cache.get_keys("*")) == remaining
        assert remaining == set()
