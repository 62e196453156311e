"""The request encoder: byte-for-byte what redis-py packs."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis._parsers.encoders import Encoder
from redis.connection import PythonRespSerializer

from arketic_cache._core._resp import pack, pack_all

NAMES = st.sampled_from(["GET", "SET", "EVALSHA", "zadd"])  # one word: flows never send "CLIENT ID"
ARGS = st.one_of(
    st.text(),
    st.binary(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text().map(lambda t: t + "\udcff"),  # a lone surrogate, as surrogateescape decodes
)


class TestResp:
    """Our request encoder writes exactly what redis-py's packer writes for our clients."""

    ENCODER = Encoder("utf-8", "surrogateescape", True)  # type: ignore[no-untyped-call]
    PACKER = PythonRespSerializer(6000, ENCODER.encode)

    def redis_py(self, command: list[Any]) -> bytes:
        return b"".join(self.PACKER.pack(*command))  # type: ignore[no-untyped-call]

    @given(NAMES, st.lists(ARGS, max_size=8))
    def test_matches_redis_py(self, name: str, args: list[Any]) -> None:
        """A command name and any str, bytes, int or float arguments pack to redis-py's bytes."""
        assert pack([name, *args]) == self.redis_py([name, *args])

    @given(st.lists(st.tuples(NAMES, st.lists(ARGS, max_size=4)), min_size=1, max_size=4))
    def test_pipeline_is_commands_back_to_back(self, commands: list[tuple[str, list[Any]]]) -> None:
        """A pipeline is each command's encoding, in order."""
        wire = [[name, *args] for name, args in commands]
        assert pack_all(wire) == b"".join(self.redis_py(command) for command in wire)

    @pytest.mark.parametrize("odd", [True, None, bytearray(b"x"), memoryview(b"x")])
    def test_other_types_are_left_to_redis_py(self, odd: Any) -> None:
        """Types we do not encode (bool, None, buffers) make the driver use redis-py's packer."""
        assert pack(["SET", "k", odd]) is None
        assert pack_all([["PING"], ["SET", "k", odd]]) is None
