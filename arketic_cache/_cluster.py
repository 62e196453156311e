"""The drivers on a Redis Cluster: one connection set per node, routed by slot.

``_core/_cluster.py`` decides where an effect goes; this module carries it there. Each flow
takes at most one connection per node it touches (the pool's token still bounds the flows
in flight). A ``MOVED`` reply updates the slot map and the command goes to the named node,
once; ``ASK`` sends it there after ``ASKING``, once; neither was executed where it was first
sent, so nothing runs twice. A batch over several nodes is written to every node before any
reply is read. A node that fails trips its own breaker, and the slot map is asked again
(from another node, at most every ``REFRESH_EVERY`` seconds) until the cluster names the
replica it promoted. Nothing is ever read from a replica.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import redis
import redis.asyncio
from redis.exceptions import AskError, ClusterDownError, MovedError, ResponseError, TryAgainError

from . import _drive
from ._breaker import CircuitBreaker, NodeBreakers
from ._core._cluster import (
    Node,
    SlotMap,
    key_of,
    parse_slots,
    scan_cursor,
    slot_of,
    split_scan,
)
from ._core._effects import Batch, Command, Effect, Flow, OnNode
from ._core._slots import key_slot
from ._drive import REDIS_ERRORS, AsyncDriver, BackendState, Skipped, SyncDriver, map_error
from ._exceptions import BackendResponseError
from ._wire import (
    AsyncConnection,
    SyncConnection,
    aexecute,
    aexecute_asking,
    aready,
    areceive,
    asend,
    execute,
    execute_asking,
    ready,
    receive,
    result,
    send,
)

__all__ = ["REFRESH_EVERY", "AsyncClusterDriver", "ClusterState", "SyncClusterDriver"]

T = TypeVar("T")

#: While a node fails or a slot moved, the slot map is asked again at most this often (s).
REFRESH_EVERY = 0.25

#: What the breakers call the cluster as a whole (no node answered for the slot map).
WHOLE: Node = ("*", 0)

_SLOTS = Command(("CLUSTER", "SLOTS"))


class NodeOpen(Skipped):
    """The breaker of the node a call is routed to is open: the call is not sent."""


class ClusterState:
    """What a cluster connection's sync and async drivers share: the slot map, when to ask
    for it again, and the nodes' breakers."""

    def __init__(self, seeds: Sequence[Node], breakers: NodeBreakers) -> None:
        self.seeds = tuple(seeds)
        self.breakers = breakers
        self.map: SlotMap | None = None
        self.stale = True
        self.asked_at = -float("inf")
        self.refreshes = 0  #: slot maps loaded
        self.redirects = 0  #: MOVED and ASK replies followed
        self.lock = threading.Lock()

    def due(self) -> bool:
        """Whether the slot map should be asked for before the next call."""
        return self.map is None or (
            self.stale and time.monotonic() - self.asked_at >= REFRESH_EVERY
        )

    def claim(self) -> bool:
        """Claim the next refresh (False: another caller is refreshing)."""
        if not self.lock.acquire(blocking=False):
            return False
        self.asked_at = time.monotonic()
        return True

    def candidates(self) -> list[Node]:
        """Nodes to ask for the slot map: the known ones whose breaker is closed first."""
        known = list(self.map.nodes) if self.map is not None else []
        nodes = list(dict.fromkeys([*known, *self.seeds]))
        closed = [node for node in nodes if self.breakers.of(node).is_closed]
        return closed + [node for node in nodes if node not in closed]

    def loaded(self, reply: Any, asked: Node) -> None:
        self.map = parse_slots(reply, asked)
        self.stale = False
        self.refreshes += 1
        self.answered(WHOLE)

    def node_for(self, slot: int | None) -> Node:
        """The primary serving ``slot`` (None: the first primary whose breaker is closed)."""
        smap = self.map
        if smap is None:
            raise redis.ConnectionError("no cluster node answered for the slot map")
        if slot is not None:
            owner = smap.owners[slot]
            if owner is None:
                self.stale = True
                raise redis.ConnectionError(f"no cluster node serves hash slot {slot}")
            return owner
        for node in smap.primaries:
            if self.breakers.of(node).is_closed:
                return node
        return smap.primaries[0]

    def redirected(self, error: AskError) -> Node:
        """Where a MOVED or ASK reply sends the command (a MOVED slot is noted in the map)."""
        self.redirects += 1
        target: Node = (error.host or "127.0.0.1", int(error.port))
        if isinstance(error, MovedError) and self.map is not None:
            self.map = self.map.moved(error.slot_id, target)
            self.stale = True
        return target

    def answered(self, node: Node) -> None:
        breaker = self.breakers.of(node)
        if not breaker.is_closed:
            breaker.record_success()

    def admit(self, node: Node, probe: bool) -> None:
        """Raise ``NodeOpen`` when ``node``'s breaker keeps calls from it."""
        if not probe and not self.breakers.of(node).allow():
            self.stale = True  # keep asking: the cluster may have promoted a replica
            raise NodeOpen(node)


def _groups(effect: Batch, state: ClusterState) -> dict[Node, list[int]]:
    groups: dict[Node, list[int]] = {}
    for position, command in enumerate(effect.commands):
        key = key_of(command.args)
        node = state.node_for(None if key is None else key_slot(key))
        groups.setdefault(node, []).append(position)
    return groups


def _redirects(replies: list[Any]) -> list[int]:
    return [i for i, reply in enumerate(replies) if isinstance(reply, AskError)]


class _Trip:
    """The connections one flow holds (one per node) and the node it talked to last."""

    __slots__ = ("held", "node", "probe")

    def __init__(self, probe: bool) -> None:
        self.held: dict[Node, Any] = {}
        self.node: Node | None = None
        self.probe = probe


class _Routing:
    """What both cluster drivers share beyond their I/O."""

    __slots__ = ()
    cluster: ClusterState
    state: BackendState
    _nodes: dict[Node, list[Any]]  # idle connections by node
    _made: list[Any]
    _pool: Any

    def _breaker_of(self, trip: Any, exc: BaseException) -> CircuitBreaker | None:
        """The breaker a failure counts on: the node's the flow talked to last. A node that
        answers CLUSTERDOWN or TRYAGAIN is fine (the cluster is between owners of a slot):
        its breaker is left alone, and the slot map asked again."""
        if not isinstance(map_error(exc, self.state), BackendResponseError):
            self.cluster.stale = True  # the node may have failed over: ask for the map
        if isinstance(exc, ClusterDownError | TryAgainError):
            return CircuitBreaker()  # counted as a failure, but by no node's breaker
        return self.cluster.breakers.of(WHOLE if trip.node is None else trip.node)

    # The slots themselves are the concrete drivers' (two bases with slots cannot be mixed).
    def __init__(self, client: Any, state: BackendState, cluster: ClusterState) -> None:
        super().__init__(client, state)  # type: ignore[call-arg]
        self.cluster = cluster  # type: ignore[misc]
        self._nodes = {}  # type: ignore[misc]

    def _forget_connections(self) -> None:
        super()._forget_connections()  # type: ignore[misc]
        self._nodes = {}  # type: ignore[misc]

    def _take(self, trip: _Trip, node: Node) -> tuple[Any, bool]:
        """The flow's connection to ``node``; True when just taken (to be checked)."""
        trip.node = node
        conn = trip.held.get(node)
        if conn is not None:
            return conn, False
        self.cluster.admit(node, trip.probe)
        idle = self._nodes.get(node)
        if idle:
            conn = idle.pop()
        else:
            conn = self._new_to(node)
            self._made.append(conn)
        trip.held[node] = conn
        return conn, True

    def _new_to(self, node: Node) -> Any:
        """A connection to ``node``, made as the pool makes its own."""
        pool = self._pool
        return pool.connection_class(**{**pool.connection_kwargs, "host": node[0], "port": node[1]})

    def _unanswered(self, trip: _Trip, failure: BaseException | None) -> None:
        """No node gave the slot map: without one (the first), the call fails."""
        trip.node = None
        if self.cluster.map is None:
            if isinstance(failure, ResponseError):
                raise failure
            raise redis.ConnectionError(
                f"no cluster node answered ({len(self.cluster.candidates())} tried): {failure}"
            )

    def _scan_step(self, effect: Command) -> tuple[Node, Command, Callable[[int], int]]:
        """Where one step of a composite SCAN goes, its own command, and the composite
        cursor of that primary's answer."""
        smap = self.cluster.map
        assert smap is not None  # routed after a refresh
        primaries = smap.primaries
        try:
            position, own = split_scan(effect.args[1], len(primaries))
        except ValueError as exc:
            raise ResponseError(f"ERR invalid cursor: {exc}") from None
        step = Command(("SCAN", own, *effect.args[2:]))
        return primaries[position], step, lambda n: scan_cursor(position, n, len(primaries))

    def _traced(self, flow: Flow[T]) -> Flow[T]:
        tracing = _drive._tracing
        return flow if tracing is None else tracing.wrap(flow, self.state)


class SyncClusterDriver(_Routing, SyncDriver):
    """``SyncDriver`` over a cluster's nodes."""

    __slots__ = ("_nodes", "cluster")

    def close(self) -> None:
        self._nodes = {}
        super().close()

    def probe(self, flow: Flow[T]) -> T:
        """Run ``flow`` past every breaker (health); raises ``BackendError`` on failure."""
        return self._serve(self._traced(flow), cast(T, None), True, probe=True)

    def load_map(self) -> None:
        """Read the slot map now if it is due (a subscriber about to pick its node); a
        failure is left for the next call to meet."""
        if self.cluster.due():
            try:
                self._refresh(_Trip(probe=True))
            except (*REDIS_ERRORS, NodeOpen):
                pass

    def _serve(self, flow: Flow[T], fallback: T, strict: bool, probe: bool = False) -> T:
        trip = _Trip(probe)
        try:
            return self._drive(trip, flow, fallback, strict)
        finally:
            for node, conn in trip.held.items():
                self._nodes.setdefault(node, []).append(conn)

    def _ready(self, conn: Any) -> None:
        """Nothing: each node's connection is checked when the flow first takes it."""

    def _execute(self, conn: Any, effect: Effect) -> Any:
        return self._tolerate_all(effect, self._route(conn, effect))

    # -- routing ----------------------------------------------------------------------------
    def _route(self, trip: _Trip, effect: Effect) -> Any:
        cluster = self.cluster
        if cluster.due():
            self._refresh(trip)
        if type(effect) is OnNode:
            try:
                return execute(self._conn(trip, effect.node), effect.command, self._callbacks)
            except REDIS_ERRORS as exc:
                return map_error(exc, self.state)
        if type(effect) is Command and effect.args[0] == "SCAN":
            return self._scan(trip, effect)
        if type(effect) is Batch and not effect.transaction and len(effect.commands) > 1:
            groups = _groups(effect, cluster)
            if len(groups) > 1:
                return self._spread(trip, effect, groups)
        return self._once(trip, cluster.node_for(slot_of(effect)), effect)

    def _conn(self, trip: _Trip, node: Node) -> SyncConnection:
        conn, taken = self._take(trip, node)
        if taken:
            ready(conn)
        return conn  # type: ignore[no-any-return]

    def _once(self, trip: _Trip, node: Node, effect: Effect) -> Any:
        callbacks = self._callbacks
        try:
            reply = execute(self._conn(trip, node), effect, callbacks)
        except AskError as redirect:  # MOVED too: nothing ran there
            target = self.cluster.redirected(redirect)
            asking = not isinstance(redirect, MovedError)
            conn = self._conn(trip, target)
            node = target
            reply = (execute_asking if asking else execute)(conn, effect, callbacks)
        self.cluster.answered(node)
        return reply

    def _spread(self, trip: _Trip, effect: Batch, groups: dict[Node, list[int]]) -> Any:
        """A batch over several nodes: written to each, then every reply read."""
        replies: list[Any] = [None] * len(effect.commands)
        pending: list[tuple[SyncConnection, list[int], Node]] = []
        try:
            for node, positions in groups.items():
                conn = self._conn(trip, node)
                send(conn, [effect.commands[i].args for i in positions])
                pending.append((conn, positions, node))
            while pending:
                conn, positions, node = pending[0]
                trip.node = node
                for position, reply in zip(positions, receive(conn, len(positions)), strict=True):
                    replies[position] = reply
                pending.pop(0)
                self.cluster.answered(node)
        except BaseException:
            for conn, _, _ in pending:  # replies still on the way: never handed to a caller
                conn.disconnect()
            raise
        for position in _redirects(replies):
            replies[position] = self._redirect(trip, effect.commands[position], replies[position])
        return result(effect, replies, self._callbacks)

    def _redirect(self, trip: _Trip, command: Command, error: AskError) -> Any:
        target = self.cluster.redirected(error)
        wire = [("ASKING",), command.args] if not isinstance(error, MovedError) else [command.args]
        conn = self._conn(trip, target)
        send(conn, wire)
        return receive(conn, len(wire))[-1]

    def _scan(self, trip: _Trip, effect: Command) -> Any:
        """One step of a SCAN over every primary, in order (see ``scan_cursor``)."""
        node, step, done = self._scan_step(effect)
        cursor, keys = self._once(trip, node, step)
        return done(int(cursor)), keys

    def _refresh(self, trip: _Trip) -> None:
        """Ask a node for the slot map (the first that answers)."""
        cluster = self.cluster
        if cluster.map is None:
            cluster.admit(WHOLE, trip.probe)  # no node answered lately: not asked again yet
        if not cluster.claim():
            if cluster.map is not None:
                return  # another caller asks; this one routes by the map it has
            with cluster.lock:  # the first map: wait for it
                if cluster.map is not None:
                    return
                cluster.asked_at = time.monotonic()
                self._ask_for_slots(trip)
                return
        try:
            self._ask_for_slots(trip)
        finally:
            cluster.lock.release()

    def _ask_for_slots(self, trip: _Trip) -> None:
        cluster = self.cluster
        failure: BaseException | None = None
        for node in cluster.candidates():
            conn = self._new_to(node)
            try:
                ready(conn)
                cluster.loaded(execute(conn, _SLOTS, self._callbacks), node)
                return
            except REDIS_ERRORS as exc:
                failure = exc
            finally:
                conn.disconnect()
        self._unanswered(trip, failure)


class AsyncClusterDriver(_Routing, AsyncDriver):
    """``AsyncDriver`` over a cluster's nodes (as ``SyncClusterDriver``)."""

    __slots__ = ("_nodes", "cluster")

    async def aclose(self) -> None:
        self._nodes = {}
        await super().aclose()

    async def probe(self, flow: Flow[T]) -> T:
        """Run ``flow`` past every breaker (health); raises ``BackendError`` on failure."""
        if asyncio.get_running_loop() is not self._loop:
            self._move_to(asyncio.get_running_loop())
        flow = self._traced(flow)
        return await self._serve(flow, cast(T, None), True, probe=True)

    async def load_map(self) -> None:
        """As ``SyncClusterDriver.load_map``."""
        if asyncio.get_running_loop() is not self._loop:
            self._move_to(asyncio.get_running_loop())
        if self.cluster.due():
            try:
                await self._refresh(_Trip(probe=True))
            except (*REDIS_ERRORS, NodeOpen):
                pass

    async def _serve(self, flow: Flow[T], fallback: T, strict: bool, probe: bool = False) -> T:
        trip = _Trip(probe)
        try:
            return await self._drive(trip, flow, fallback, strict)
        finally:
            for node, conn in trip.held.items():
                self._nodes.setdefault(node, []).append(conn)

    async def _ready(self, conn: Any) -> None:
        """Nothing (as ``SyncClusterDriver._ready``)."""

    async def _execute(self, conn: Any, effect: Effect) -> Any:
        return self._tolerate_all(effect, await self._route(conn, effect))

    async def _route(self, trip: _Trip, effect: Effect) -> Any:
        cluster = self.cluster
        if cluster.due():
            await self._refresh(trip)
        if type(effect) is OnNode:
            try:
                conn = await self._conn(trip, effect.node)
                return await aexecute(conn, effect.command, self._callbacks)
            except REDIS_ERRORS as exc:
                return map_error(exc, self.state)
        if type(effect) is Command and effect.args[0] == "SCAN":
            return await self._scan(trip, effect)
        if type(effect) is Batch and not effect.transaction and len(effect.commands) > 1:
            groups = _groups(effect, cluster)
            if len(groups) > 1:
                return await self._spread(trip, effect, groups)
        return await self._once(trip, cluster.node_for(slot_of(effect)), effect)

    async def _conn(self, trip: _Trip, node: Node) -> AsyncConnection:
        conn, taken = self._take(trip, node)
        if taken:
            await aready(conn)
        return conn  # type: ignore[no-any-return]

    async def _once(self, trip: _Trip, node: Node, effect: Effect) -> Any:
        callbacks = self._callbacks
        try:
            reply = await aexecute(await self._conn(trip, node), effect, callbacks)
        except AskError as redirect:  # MOVED too: nothing ran there
            target = self.cluster.redirected(redirect)
            asking = not isinstance(redirect, MovedError)
            conn = await self._conn(trip, target)
            node = target
            reply = await (aexecute_asking if asking else aexecute)(conn, effect, callbacks)
        self.cluster.answered(node)
        return reply

    async def _spread(self, trip: _Trip, effect: Batch, groups: dict[Node, list[int]]) -> Any:
        replies: list[Any] = [None] * len(effect.commands)
        pending: list[tuple[AsyncConnection, list[int], Node]] = []
        try:
            for node, positions in groups.items():
                conn = await self._conn(trip, node)
                await asend(conn, [effect.commands[i].args for i in positions])
                pending.append((conn, positions, node))
            while pending:
                conn, positions, node = pending[0]
                trip.node = node
                answers = await areceive(conn, len(positions))
                for position, reply in zip(positions, answers, strict=True):
                    replies[position] = reply
                pending.pop(0)
                self.cluster.answered(node)
        except BaseException:
            for conn, _, _ in pending:
                await conn.disconnect(nowait=True)
            raise
        for position in _redirects(replies):
            replies[position] = await self._redirect(
                trip, effect.commands[position], replies[position]
            )
        return result(effect, replies, self._callbacks)

    async def _redirect(self, trip: _Trip, command: Command, error: AskError) -> Any:
        target = self.cluster.redirected(error)
        wire = [("ASKING",), command.args] if not isinstance(error, MovedError) else [command.args]
        conn = await self._conn(trip, target)
        await asend(conn, wire)
        return (await areceive(conn, len(wire)))[-1]

    async def _scan(self, trip: _Trip, effect: Command) -> Any:
        node, step, done = self._scan_step(effect)
        cursor, keys = await self._once(trip, node, step)
        return done(int(cursor)), keys

    async def _refresh(self, trip: _Trip) -> None:
        cluster = self.cluster
        if cluster.map is None:
            cluster.admit(WHOLE, trip.probe)
        if cluster.map is not None and not cluster.claim():
            return
        if cluster.map is None:
            cluster.asked_at = time.monotonic()  # the first map: every caller asks
            await self._ask_for_slots(trip)
            return
        try:
            await self._ask_for_slots(trip)
        finally:
            cluster.lock.release()

    async def _ask_for_slots(self, trip: _Trip) -> None:
        cluster = self.cluster
        failure: BaseException | None = None
        for node in cluster.candidates():
            conn = self._new_to(node)
            try:
                await aready(conn)
                cluster.loaded(await aexecute(conn, _SLOTS, self._callbacks), node)
                return
            except REDIS_ERRORS as exc:
                failure = exc
            finally:
                await conn.disconnect()
        self._unanswered(trip, failure)
