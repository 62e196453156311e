"""The example application in a real uvicorn process on a free loopback port, and what its
tests do with it (log in, read events, wait for a health verdict)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from types import TracebackType

import httpx

from arketic_cache.testing import free_port, terminate


class AppServer:
    """``python -m uvicorn examples.app:app`` with ``REDIS_URL`` (and ``env``, e.g. the
    ``REDIS_*`` settings); ``url`` once it answers."""

    def __init__(self, redis_url: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, **(env or {}), "REDIS_URL": redis_url}
        command = [sys.executable, "-m", "uvicorn", "examples.app:app", "--port", str(self.port)]
        self.process = subprocess.Popen(
            [*command, "--no-access-log"], env=env, stderr=subprocess.PIPE, text=True
        )
        self._wait_until_live()

    def _wait_until_live(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the app exited: {self.process.communicate()[1][-2000:]}")
            try:
                if httpx.get(f"{self.url}/health/live", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)  # polling a starting process, not a race fix
        self.close()
        raise RuntimeError("the app did not start within 30 s")

    def close(self) -> None:
        terminate(self.process)

    def __enter__(self) -> AppServer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def session_cookie(reply: httpx.Response) -> dict[str, str]:
    """The cookies a login set, to send back by hand: httpx sends ``Secure`` cookies over
    https only, as a browser does off localhost."""
    return dict(reply.cookies.items())


def header(cookies: dict[str, str]) -> dict[str, str]:
    """The ``Cookie`` header sending ``cookies`` back."""
    return {"cookie": "; ".join(f"{name}={value}" for name, value in cookies.items())}


def login(app: AppServer, user: str) -> dict[str, str]:
    """Log ``user`` in; the session cookies, which must be HttpOnly and Secure."""
    reply = httpx.post(f"{app.url}/login", json={"username": user, "password": "arketic"})
    assert reply.status_code == 200, reply.text
    assert "HttpOnly" in reply.headers["set-cookie"]
    assert "Secure" in reply.headers["set-cookie"]
    return session_cookie(reply)


def login_when_up(app: AppServer, user: str) -> dict[str, str]:
    """Log in again (the restarted server lost the sessions), as a client retries a 503."""
    deadline = time.monotonic() + 10
    while True:
        reply = httpx.post(f"{app.url}/login", json={"username": user, "password": "arketic"})
        if reply.status_code == 200 or time.monotonic() > deadline:
            assert reply.status_code == 200, reply.text
            return session_cookie(reply)
        time.sleep(0.1)  # a client's retry delay after a 503, not a race fix


def read_event(lines: Iterator[str]) -> tuple[str, dict[str, object]]:
    """The next event with data: its id and its JSON."""
    fields: dict[str, str] = {}
    for line in lines:
        if not line:
            if "data" in fields:
                return fields["id"], json.loads(fields["data"])
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            fields[name] = value
    raise AssertionError("the stream ended")


def health_once_reused_reports_expire(app: AppServer, status: int) -> httpx.Response:
    """/health once it answers ``status``: the app reuses a report for 1 s (so probes cannot
    storm Redis), so the answer changes within that, never later."""
    deadline = time.monotonic() + 5
    while True:
        reply = httpx.get(f"{app.url}/health", timeout=10)
        if reply.status_code == status or time.monotonic() > deadline:
            assert reply.status_code == status
            return reply
        time.sleep(0.1)  # the report's reuse window, documented
