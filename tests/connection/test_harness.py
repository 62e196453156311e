"""The real-server harness: skip without redis-server, fail instead under CI's variable."""

from __future__ import annotations

import pytest

from .. import helpers


def test_missing_binary_skips(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without redis-server and without ARKETIC_REQUIRE_REDIS, real-server tests skip."""
    monkeypatch.setattr(helpers, "find_redis_server", lambda: None)
    monkeypatch.setattr(helpers, "REQUIRE_REDIS", False)
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        helpers.redis_server_binary()


def test_missing_binary_fails_when_required(monkeypatch: pytest.MonkeyPatch) -> None:
    """With ARKETIC_REQUIRE_REDIS=1 a missing redis-server is a failure, not a skip."""
    monkeypatch.setattr(helpers, "find_redis_server", lambda: None)
    monkeypatch.setattr(helpers, "REQUIRE_REDIS", True)
    with pytest.raises(pytest.fail.Exception, match="ARKETIC_REQUIRE_REDIS=1"):
        helpers.redis_server_binary()
