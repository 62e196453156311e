"""Helpers for tests and benchmarks: a throwaway redis-server of your own.

``RedisServer`` starts ``redis-server`` on a free loopback port with a random password, no
persistence and its own directory, and can stop, kill, freeze (SIGSTOP) or restart exactly the
process it started, so fault tests never touch a server they did not create.
``SentinelTopology`` starts a primary, a replica and three sentinels the same way, and
``ClusterTopology`` a Redis Cluster of three primaries and three replicas.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

__all__ = [
    "ClusterTopology",
    "RedisServer",
    "SentinelTopology",
    "cluster_port",
    "find_redis_server",
    "free_port",
    "terminate",
]

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


#: A cluster node also listens on its port + 10000 (the cluster bus), so no higher port works.
MAX_CLUSTER_PORT = 55535


def cluster_port() -> int:
    """A free loopback port for a cluster node: at most 55535, its bus port free too."""
    while True:
        port = free_port()
        if port > MAX_CLUSTER_PORT:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


class _Started:
    """A context manager that closes what it started when the block ends."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class RedisServer(_Started):
    """One redis-server on 127.0.0.1 with a random password and no persistence."""

    def __init__(self, executable: str, *extra_args: str, password: str | None = None) -> None:
        self.executable = executable
        self.extra_args = extra_args
        self.password = password or secrets.token_urlsafe(16)
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


_SENTINEL_CONF = """port {port}
bind 127.0.0.1
dir {directory}
logfile {directory}/sentinel.log
requirepass {sentinel_password}
sentinel monitor {service} 127.0.0.1 {primary} 2
sentinel auth-pass {service} {password}
sentinel down-after-milliseconds {service} {down_after_ms}
sentinel failover-timeout {service} {failover_timeout_ms}
"""


class SentinelTopology(_Started):
    """A primary and a replica (one password) watched by three sentinels (another
    password, quorum 2) on free loopback ports; ``url`` is the ``redis+sentinel://`` URL.

    Failover is quick: the primary counts as down after ``down_after_ms`` without an answer.
    ``stop`` ends exactly the processes it started.
    """

    def __init__(
        self,
        executable: str,
        service: str = "arketic",
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 3000,
    ) -> None:
        self.executable = executable
        self.service = service
        self.password = secrets.token_urlsafe(16)
        self.sentinel_password = secrets.token_urlsafe(16)
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.directory = Path(tempfile.mkdtemp(prefix="arketic-sentinel-"))
        self.servers: list[RedisServer] = []
        self.sentinels: list[tuple[int, subprocess.Popen[str]]] = []

    @property
    def url(self) -> str:
        """``redis+sentinel://:<password>@<sentinels>/<service>/0?sentinel_password=...``."""
        hosts = ",".join(f"127.0.0.1:{port}" for port, _ in self.sentinels)
        return (
            f"redis+sentinel://:{self.password}@{hosts}/{self.service}/0"
            f"?sentinel_password={self.sentinel_password}"
        )

    def start(self, timeout: float = 30.0) -> SentinelTopology:
        """Start everything; return once the replica is in sync and every sentinel knows
        the replica and the other two sentinels."""
        auth = ("--masterauth", self.password)
        primary = RedisServer(self.executable, *auth, password=self.password).start()
        self.servers.append(primary)
        follow = ("--replicaof", "127.0.0.1", str(primary.port))
        self.servers.append(
            RedisServer(self.executable, *auth, *follow, password=self.password).start()
        )
        for n in range(3):
            directory = self.directory / f"sentinel-{n}"
            directory.mkdir()
            port = free_port()
            conf = directory / "sentinel.conf"  # sentinels rewrite their file: one each
            conf.write_text(
                _SENTINEL_CONF.format(
                    port=port,
                    directory=directory,
                    sentinel_password=self.sentinel_password,
                    service=self.service,
                    primary=primary.port,
                    password=self.password,
                    down_after_ms=self.down_after_ms,
                    failover_timeout_ms=self.failover_timeout_ms,
                ),
                encoding="utf-8",
            )
            process = subprocess.Popen(
                [self.executable, str(conf), "--sentinel"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            self.sentinels.append((port, process))
        self._wait_until_settled(time.monotonic() + timeout)
        return self

    def _settled(self) -> bool:
        try:
            for port, _ in self.sentinels:
                with _admin(port, self.sentinel_password) as client:
                    client.sentinel_ckquorum(self.service)
                    replicas = client.sentinel_slaves(self.service)
                    if len(replicas) != 1 or replicas[0].get("master-link-status") != "ok":
                        return False
                    if (
                        replicas[0].get("is_sdown")
                        or len(client.sentinel_sentinels(self.service)) != 2
                    ):
                        return False
        except Exception:  # a sentinel still starting, or not told yet: not settled
            return False
        return True

    def _wait_until_settled(self, deadline: float) -> None:
        while not self._settled():
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the sentinel topology did not settle; see {self.directory}")
            time.sleep(0.05)  # polling processes that start, not a race fix

    def primary_port(self) -> int:
        """The port of the server the sentinels call primary now (the first one's view)."""
        return self.primary_port_from(0)

    def primary_port_from(self, sentinel: int) -> int:
        """The port of the server sentinel number ``sentinel`` calls primary now."""
        with _admin(self.sentinels[sentinel][0], self.sentinel_password) as client:
            return int(client.sentinel_get_master_addr_by_name(self.service)[1])

    def server_on(self, port: int) -> RedisServer:
        """The started server listening on ``port``."""
        return next(server for server in self.servers if server.port == port)

    def stop(self) -> None:
        """Stop the sentinels, then the servers, and remove the directories."""
        for _, process in self.sentinels:
            terminate(process)
        self.sentinels = []
        for server in self.servers:
            server.close()
        self.servers = []
        shutil.rmtree(self.directory, ignore_errors=True)

    def close(self) -> None:
        """As ``stop``."""
        self.stop()


def _admin(port: int, password: str) -> Any:
    """A client of the harness' own node or sentinel on ``port``."""
    import redis

    return redis.Redis(host="127.0.0.1", port=port, password=password, socket_timeout=2)


class ClusterTopology(_Started):
    """A Redis Cluster of ``primaries`` primaries and as many replicas (one password) on free
    loopback ports, the slots split evenly; ``seeds`` are the nodes' addresses. Failover is
    quick (``cluster-node-timeout`` ``node_timeout_ms``). ``close`` ends exactly the
    processes it started."""

    def __init__(self, executable: str, primaries: int = 3, node_timeout_ms: int = 2000) -> None:
        self.executable = executable
        self.primaries = primaries
        self.node_timeout_ms = node_timeout_ms
        self.password = secrets.token_urlsafe(16)
        self.nodes: list[RedisServer] = []

    @property
    def seeds(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", node.port) for node in self.nodes]

    def start(self, timeout: float = 30.0) -> ClusterTopology:
        """Start the nodes, assign the slots, join them and attach the replicas; return once
        every node reports ``cluster_state:ok`` and every replica is in sync."""
        deadline = time.monotonic() + timeout
        args = (
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(self.node_timeout_ms),
            "--masterauth", self.password,
        )  # fmt: skip
        for _ in range(2 * self.primaries):
            node = RedisServer(self.executable, *args, password=self.password)
            self.nodes.append(node)
            node.start(cluster_port())
        clients = [_admin(node.port, self.password) for node in self.nodes]
        try:
            per = 16384 // self.primaries
            for i, client in enumerate(clients[: self.primaries]):
                last = 16383 if i == self.primaries - 1 else (i + 1) * per - 1
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", i * per, last)
            for client in clients[1:]:
                client.execute_command("CLUSTER", "MEET", "127.0.0.1", self.nodes[0].port)
            self._wait(deadline, lambda: all(len(_known(c)) == len(clients) for c in clients))
            ids = [c.execute_command("CLUSTER", "MYID").decode() for c in clients]
            for replica, primary_id in zip(clients[self.primaries :], ids, strict=False):
                self._wait(deadline, lambda r=replica, p=primary_id: p in _known(r))
                replica.execute_command("CLUSTER", "REPLICATE", primary_id)
            self._wait(deadline, lambda: all(_settled(c) for c in clients))
        except BaseException:
            self.close()
            raise
        finally:
            for client in clients:
                client.close()
        return self

    def _wait(self, deadline: float, done: Any) -> None:
        while not done():
            if time.monotonic() > deadline:
                raise RuntimeError("the cluster did not form in time")
            time.sleep(0.05)  # polling nodes that gossip, not a race fix

    def node_on(self, port: int) -> RedisServer:
        """The started node listening on ``port``."""
        return next(node for node in self.nodes if node.port == port)

    def close(self) -> None:
        """Stop every node and remove its directory."""
        for node in self.nodes:
            node.close()
        self.nodes = []


def _known(client: Any) -> set[str]:
    """The node ids ``client``'s node knows (itself included)."""
    lines = client.execute_command("CLUSTER", "NODES").decode().splitlines()
    return {line.split()[0] for line in lines if line.strip()}


def _settled(client: Any) -> bool:
    """The node sees the cluster ok and, if it is a replica, is in sync with its primary."""
    info = client.execute_command("CLUSTER", "INFO").decode()
    if "cluster_state:ok" not in info:
        return False
    replication = client.info("replication")
    return bool(replication["role"] == "master" or replication.get("master_link_status") == "up")
