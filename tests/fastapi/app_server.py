"""The example application in a real uvicorn process on a free loopback port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from types import TracebackType

import httpx

from arketic_cache.testing import free_port


class AppServer:
    """``python -m uvicorn examples.app:app`` with ``REDIS_URL``; ``url`` once it answers."""

    def __init__(self, redis_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "REDIS_URL": redis_url}
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
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.communicate()

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
