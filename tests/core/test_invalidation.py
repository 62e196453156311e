"""The invalidation announcement's wire format."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from arketic_cache._core._cached import invalidation_message, parse_invalidation


class TestInvalidationMessage:
    """The announcement of a changed entry is the compact JSON array of origin and key."""

    @given(st.text(), st.text())
    def test_is_compact_json_and_round_trips(self, origin: str, key: str) -> None:
        """Any origin and key (quotes, controls, non-ASCII, surrogates) survive the trip."""
        message = invalidation_message(origin, key)
        assert message == json.dumps([origin, key], separators=(",", ":"))
        assert parse_invalidation(message) == (origin, key)
