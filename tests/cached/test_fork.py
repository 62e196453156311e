"""A forked child never inherits the parent's in-flight work: it computes for itself."""

from __future__ import annotations

import os
import select
import signal
import threading

import pytest

from arketic_cache import RedisConnection, cached

#: How long the child may take before it counts as hung (a bound, not a synchronisation).
HUNG_AFTER = 10.0

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")


def test_child_does_not_join_a_flight_of_the_parents_thread(backend_url: str) -> None:
    """A call the parent's thread is computing at fork() time is computed anew in the child."""
    conn = RedisConnection(url=backend_url)
    started, release = threading.Event(), threading.Event()
    calls: list[str] = []

    @cached(connection=conn, ttl=60, namespace="fork")
    def compute(x: int) -> str:
        calls.append(f"{os.getpid()}")
        if os.getpid() == parent:
            started.set()
            release.wait(HUNG_AFTER)
        return f"value-{x}"

    parent = os.getpid()
    leader = threading.Thread(target=compute, args=(1,))
    leader.start()
    try:
        assert started.wait(HUNG_AFTER)  # the parent's flight for compute(1) is open
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                if compute(1) == "value-1" and calls[-1] == str(os.getpid()):
                    os.write(write_end, b"computed")
                    status = 0
            finally:
                os._exit(status)
        os.close(write_end)
        ready, _, _ = select.select([read_end], [], [], HUNG_AFTER)
        if not ready:
            os.kill(pid, signal.SIGKILL)
        output = os.read(read_end, 64) if ready else b""
        os.close(read_end)
        _, status = os.waitpid(pid, 0)
        assert output == b"computed", "the child joined the parent's flight and hung"
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        release.set()
        leader.join()
        conn.close_sync()
    assert calls == [str(parent)]  # the child's own call is counted in the child only
