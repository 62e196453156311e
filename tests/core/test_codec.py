"""JSON encoding rules, glob escaping and the scripts' documented interface."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arketic_cache import SerializationError
from arketic_cache._codec import decode, encode
from arketic_cache._core._validate import escape_glob
from arketic_cache._lua import INCREMENT_WITH_TTL, UNLINK_IF_EQUAL


class TestCodecAndEscaping:
    """JSON encoding rules and glob escaping."""

    def test_nan_becomes_null(self) -> None:
        """NaN and infinities are stored as null, so any JSON reader accepts them."""
        assert decode(encode([math.nan, math.inf], 100)) == [None, None]

    def test_size_limit(self) -> None:
        """The size guard counts encoded bytes."""
        encode("é" * 10, 22)
        with pytest.raises(SerializationError):
            encode("é" * 10, 21)

    @given(st.text(max_size=30))
    def test_escaped_text_matches_only_itself(self, text: str) -> None:
        """An escaped string has no unescaped glob character left."""
        escaped = escape_glob(text)
        i = 0
        while i < len(escaped):
            if escaped[i] == "\\":
                assert escaped[i + 1] in "*?[]\\"
                i += 2
                continue
            assert escaped[i] not in "*?[]"
            i += 1

    def test_lua_scripts_document_their_interface(self) -> None:
        """Each script's header names its KEYS, ARGV and return value."""
        for script in (INCREMENT_WITH_TTL, UNLINK_IF_EQUAL):
            assert all(tag in script.text for tag in ("KEYS[1]", "ARGV[1]", "Returns"))
            assert len(script.sha) == 40
