"""Helpers for tests and benchmarks: a throwaway redis-server of your own.

``RedisServer`` starts ``redis-server`` on a free loopback port with a random password, no
persistence and its own directory, and can stop, kill, freeze (SIGSTOP) or restart exactly the
process it started, so fault tests never touch a server they did not create.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

__all__ = ["RedisServer", "find_redis_server", "free_port", "terminate"]

_READY = "Ready to accept connections"


def find_redis_server() -> str | None:
    """Path of the redis-server binary, or None."""
    return shutil.which("redis-server")


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def terminate(process: subprocess.Popen[str], grace: float = 10.0) -> None:
    """Stop a child process that may still run: SIGTERM, then SIGKILL after ``grace`` s."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.communicate(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()


class RedisServer:
    """One redis-server on 127.0.0.1 with a random password and no persistence."""

    def __init__(self, executable: str, *extra_args: str) -> None:
        self.executable = executable
        self.extra_args = extra_args
        self.password = secrets.token_urlsafe(16)
        self.directory = Path(tempfile.mkdtemp(prefix="arketic-redis-"))
        self.port = 0
        self.process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        """``redis://`` URL with the password."""
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    @property
    def unix_socket(self) -> Path:
        """Path of the server's unix socket."""
        return self.directory / "redis.sock"

    def start(self, port: int | None = None) -> RedisServer:
        """Start on ``port`` (a free one if None) and return once it accepts connections."""
        for _ in range(5):
            self.port = port or free_port()
            if self._launch():
                return self
            if port is not None:
                break
        raise RuntimeError(f"redis-server did not start; see {self.directory}")

    def _launch(self) -> bool:
        args = [
            self.executable,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--requirepass", self.password,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.directory),
            "--unixsocket", str(self.unix_socket),
            "--unixsocketperm", "700",
            "--daemonize", "no",
            "--logfile", "",
            *self.extra_args,
        ]  # fmt: skip
        process = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert process.stdout is not None
        # The server logs to stdout; reading until the ready line (or EOF when it exits,
        # e.g. because the port was taken meanwhile) waits exactly as long as needed.
        for line in process.stdout:
            if _READY in line:
                self.process = process
                return True
        process.wait()
        return False

    def _signal(self, sig: signal.Signals) -> None:
        assert self.process is not None, "server not running"
        os.kill(self.process.pid, sig)

    def freeze(self) -> None:
        """SIGSTOP: the server keeps its sockets open but answers nothing."""
        self._signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT after ``freeze``."""
        self._signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL and reap the server."""
        self._signal(signal.SIGKILL)
        self._reap()

    def stop(self) -> None:
        """Stop the server if it runs (thawing it first if frozen)."""
        if self.process is None or self.process.poll() is not None:
            self.process = None
            return
        self._signal(signal.SIGCONT)
        self.process.terminate()
        self._reap()

    def restart(self) -> None:
        """Stop, then start again on the same port."""
        self.stop()
        self.start(self.port)

    def _reap(self) -> None:
        assert self.process is not None
        self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None

    def close(self) -> None:
        """Stop the server and remove its directory."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
