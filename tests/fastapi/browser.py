"""A headless Chromium driven over its DevTools protocol (a WebSocket of JSON commands)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from ..helpers import REQUIRE_REDIS

FLAGS = (
    "--headless=new",
    "--no-sandbox",  # root in a container has no user namespace for the sandbox
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-extensions",
    "--no-first-run",
    "--window-size=900,700",
    "--remote-debugging-port=0",
)


def chromium_binary() -> str:
    """Chromium's path; skips (or fails where the real-server tests must run) without it."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    message = "chromium is not installed (run `make test` as root to install it)"
    if REQUIRE_REDIS:
        pytest.fail(f"ARKETIC_REQUIRE_REDIS=1 but {message}")
    pytest.skip(message)


class Browser:
    """One page of a fresh headless Chromium profile."""

    def __init__(self) -> None:
        self._profile = tempfile.TemporaryDirectory(
            prefix="arketic-chromium-", ignore_cleanup_errors=True
        )
        profile = Path(self._profile.name)
        self.process = subprocess.Popen(
            [chromium_binary(), *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its helper processes in a group of their own
        )
        self._stack = contextlib.ExitStack()
        try:
            port = self._devtools_port(profile / "DevToolsActivePort")
            pages = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
            page = next(target for target in pages if target["type"] == "page")
            socket = connect(page["webSocketDebuggerUrl"], max_size=None)
            self._socket: ClientConnection = self._stack.enter_context(socket)
            self._ids = 0
            self.call("Page.enable")
        except BaseException:
            self.close()  # never leave a browser behind
            raise

    def _devtools_port(self, announced: Path) -> int:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # Chromium writes the file once it listens
            if self.process.poll() is not None:
                raise RuntimeError("chromium exited at startup")
            lines = announced.read_text().split("\n") if announced.exists() else []
            if len(lines) >= 2 and lines[0].isdigit():
                return int(lines[0])
            time.sleep(0.05)  # waiting for a starting process, not a race fix
        raise RuntimeError("chromium did not open its DevTools port within 30 s")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result (events in between are dropped)."""
        self._ids += 1
        self._socket.send(json.dumps({"id": self._ids, "method": method, "params": params}))
        while True:
            reply = json.loads(self._socket.recv(timeout=30))
            if reply.get("id") == self._ids:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply["result"]
                return result

    def wait_for_event(self, method: str) -> None:
        while json.loads(self._socket.recv(timeout=30)).get("method") != method:
            pass

    def open(self, url: str) -> None:
        """Navigate and wait for the load event."""
        self.call("Page.navigate", url=url)
        self.wait_for_event("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (a promise is awaited)."""
        result = self.call(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"JavaScript failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot")["data"]))
        return path

    def close(self) -> None:
        """Stop Chromium and every helper it started, then remove the profile."""
        self._stack.close()
        group = os.getpgid(self.process.pid)
        os.killpg(group, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):  # helpers still writing the profile
            os.killpg(group, signal.SIGKILL)
        self.process.wait()
        self._profile.cleanup()

    def __enter__(self) -> Browser:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
