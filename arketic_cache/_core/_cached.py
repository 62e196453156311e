"""The pure parts of ``@cached``: call keys, the stored envelope, freshness, TTL jitter.

An L2 entry is a JSON envelope ``{"v": value, "d": compute_seconds}``: the value encoded
through the function's return annotation and how long it took to compute (for probabilistic
early refresh, XFetch). Its age is never judged by a timestamp written by another host: every
read also asks Redis for the key's remaining TTL (``PTTL``, in the same round trip), and
freshness, staleness and the L1 lifetime are all derived from that (a function with none of
them, L2 only, reads the value alone).

Decisions that depend on the clock or on chance take ``now``/``draw`` as arguments.
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Callable, Collection, Mapping
from json.encoder import encode_basestring_ascii
from typing import Annotated, Any, NamedTuple, cast, get_args, get_origin, get_type_hints

from pydantic import ValidationError

from .._codec import EnvelopeCodec
from .._exceptions import BackendError, ConfigurationError, InvalidInputError
from .._keys import KeySchema, escape_part, stable_hash
from .._lua import RELEASE_LEASE, STORE_AND_ANNOUNCE, UNLINK_AND_ANNOUNCE
from ._cache import CacheStats, drop_corrupt
from ._effects import Batch, Command, Eval, Flow

__all__ = [
    "KW",
    "CallKeyer",
    "Claim",
    "Entry",
    "call_key",
    "claim_lease",
    "early_refresh_due",
    "freshness",
    "injected",
    "invalidate_entry",
    "invalidation_message",
    "jittered_ttl",
    "lease_key",
    "load_entry",
    "parse_invalidation",
    "release_lease",
    "remaining_seconds",
    "return_type",
    "static_prefix",
    "store_entry",
]

#: Separates positional from keyword arguments in L1 call keys.
KW = object()


def call_key(positional: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The L1 key of a call: its arguments with their types (1, 1.0 and True differ).

    The hot paths in ``_cached.py`` inline the keyword-free form; a test keeps them equal.
    """
    if kwargs:
        values = kwargs.values()
        return (*positional, KW, *kwargs.items(), *map(type, positional), *map(type, values))
    return (*positional, *map(type, positional))


def return_type(fn: Callable[..., Any]) -> Any:
    """The declared return type of ``fn`` (``Any`` when it has none)."""
    try:
        hints = get_type_hints(fn)
    except Exception:  # unresolvable forward references: fall back to plain JSON
        return Any
    return hints.get("return", Any)


#: What a web framework passes to a path operation besides its data (matched by module and
#: class name, so the core imports no framework): the request, the response, background tasks.
_FRAMEWORK_MODULES = ("starlette.", "fastapi.")
_FRAMEWORK_TYPES = frozenset(
    {"HTTPConnection", "Request", "WebSocket", "Response", "BackgroundTasks", "SecurityScopes"}
)
#: A parameter filled in by dependency injection (``Depends``, ``Security``).
_INJECTION_MARKERS = frozenset({"Depends", "Security"})


def _framework(cls: Any, names: frozenset[str]) -> bool:
    return isinstance(cls, type) and any(
        c.__name__ in names and c.__module__.startswith(_FRAMEWORK_MODULES) for c in cls.__mro__
    )


def injected(parameter: inspect.Parameter, hint: Any) -> bool:
    """Whether a web framework fills ``parameter`` in: its request, response or background
    tasks (by type), or a dependency (``Depends``/``Security`` as default or ``Annotated``
    metadata). Such values are not the call's data and never enter a cache key."""
    if _framework(type(parameter.default), _INJECTION_MARKERS):
        return True
    if get_origin(hint) is Annotated:
        hint, *metadata = get_args(hint)
        if any(_framework(type(m), _INJECTION_MARKERS) for m in metadata):
            return True
    return _framework(hint, _FRAMEWORK_TYPES)


def _injected_names(fn: Callable[..., Any], signature: inspect.Signature) -> frozenset[str]:
    try:
        hints = get_type_hints(fn, include_extras=True)
    except Exception:  # unresolvable forward references: judge by the defaults alone
        hints = {}
    return frozenset(
        name
        for name, parameter in signature.parameters.items()
        if injected(parameter, hints.get(name, parameter.annotation))
    )


class CallKeyer:
    """Turn a call's arguments into its L2 key, the same for every equivalent call.

    Arguments are bound to the signature with defaults applied, so ``f(1)``, ``f(x=1)`` and
    ``f(1, y=<default>)`` share a key. ``self``/``cls`` of a method, the ``exclude``d
    parameters and those a web framework injects (``injected``) never enter the key (an
    instance's memory address must not be part of it).
    """

    __slots__ = (
        "_fields",
        "_key_fn",
        "_schema",
        "_signature",
        "_skip",
        "injected",
        "label",
        "namespace",
        "prefix",
    )

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        namespace: str | None,
        key: type[KeySchema] | Callable[..., str] | None,
        exclude: Collection[str],
    ) -> None:
        self._signature = inspect.signature(fn)
        names = list(self._signature.parameters)
        method = "." in fn.__qualname__.replace("<locals>.", "") and names[:1] in (
            ["self"],
            ["cls"],
        )
        #: Parameters a web framework fills in (request, response, dependencies).
        self.injected = _injected_names(fn, self._signature)
        self._skip = frozenset(names[:1] if method else ()) | frozenset(exclude) | self.injected
        unknown = set(exclude) - set(names)
        if unknown:
            raise ConfigurationError(f"{fn.__qualname__} has no parameter {sorted(unknown)}")
        #: The function's name in the metrics: its namespace, or module and qualified name.
        self.label = label = namespace or f"{fn.__module__}.{fn.__qualname__}"
        self.namespace = "cached:" + escape_part(label)
        self._schema: type[KeySchema] | None = None
        self._key_fn: Callable[..., str] | None = None
        self._fields: tuple[str, ...] = ()
        #: What every key of this function starts with ("" for a key function: anything).
        self.prefix = self.namespace + ":"
        if key is None:
            pass
        elif isinstance(key, type) and issubclass(key, KeySchema):
            self.prefix = static_prefix(key)
            missing = set(key.model_fields) - set(names)
            if missing:
                raise ConfigurationError(
                    f"{key.__name__} needs {sorted(missing)}, which {fn.__qualname__} lacks"
                )
            self._schema, self._fields = key, tuple(key.model_fields)
        else:
            self._key_fn = cast(Callable[..., str], key)
            self.prefix = ""

    @property
    def skips_first(self) -> bool:
        """True when the first positional argument (``self``/``cls``) is left out of keys."""
        names = list(self._signature.parameters)
        return bool(names) and names[0] in self._skip and names[0] in ("self", "cls")

    def __call__(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
        """The L2 key for this call (without the connection's key prefix).

        Raises:
            InvalidInputError: the arguments do not fit the signature or have no JSON form.
        """
        if self._key_fn is not None:
            key = self._key_fn(*args, **kwargs)
            if type(key) is not str or not key:
                raise InvalidInputError("a key function must return a non-empty str")
            return key
        try:
            bound = self._signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidInputError(str(exc)) from None
        bound.apply_defaults()
        arguments = {k: v for k, v in bound.arguments.items() if k not in self._skip}
        if self._schema is not None:
            return self._schema(**{name: arguments[name] for name in self._fields}).render()
        return f"{self.namespace}:{stable_hash(arguments)}"


def static_prefix(schema: type[KeySchema]) -> str:
    """The literal start of every key of ``schema`` (up to its first field)."""
    return schema._format.split("{", 1)[0]


class Entry(NamedTuple):
    """An L2 entry as read: the envelope and the key's remaining TTL as Redis reported it."""

    value: Any
    compute_seconds: float
    remaining: float  # seconds until Redis expires the key (inf: no TTL)


def remaining_seconds(pttl: Any) -> float:
    """A PTTL reply in seconds: inf for a key without TTL, 0 for one that is gone."""
    if not isinstance(pttl, int) or pttl == -2:
        return 0.0
    return math.inf if pttl == -1 else pttl / 1000


def freshness(entry: Entry, stale_for: float, beta: float, draw: float) -> str:
    """How to treat an L2 entry: ``fresh``, ``stale`` (serve, refresh in the background) or
    ``miss`` (recompute now: expired, or XFetch chose an early refresh).

    ``stale_for`` is the stale-while-revalidate period the key was stored with beyond its
    TTL; ``draw`` is uniform in (0, 1].
    """
    fresh_for = entry.remaining - stale_for
    if fresh_for <= 0:
        return "stale" if stale_for and entry.remaining > 0 else "miss"
    if early_refresh_due(entry.compute_seconds, beta, fresh_for, draw):
        return "miss"
    return "fresh"


def jittered_ttl(ttl: int, jitter: float, draw: float) -> int:
    """``ttl`` shortened by up to ``jitter`` (a fraction) using ``draw`` in [0, 1)."""
    return max(1, ttl - int(ttl * jitter * draw))


def early_refresh_due(compute_seconds: float, beta: float, fresh_for: float, draw: float) -> bool:
    """XFetch: refresh before expiry with a probability that grows as expiry nears.

    ``fresh_for`` is how long the entry has left; ``draw`` is uniform in (0, 1]. A slow
    computation (large ``compute_seconds``) starts its refresh earlier; ``beta`` > 1 favours
    earlier refreshes.
    """
    if beta <= 0 or compute_seconds <= 0:
        return False
    return -compute_seconds * beta * math.log(draw) >= fresh_for


def invalidation_message(origin: str, key: str) -> str:
    """What is published when an entry changes: who changed it, and which key.

    The compact JSON array ``json.dumps([origin, key])`` would write, built from its C string
    encoder at a fraction of the cost (it runs on every invalidation).
    """
    return f"[{encode_basestring_ascii(origin)},{encode_basestring_ascii(key)}]"


def parse_invalidation(message: str) -> tuple[str, str] | None:
    """``(origin, key)`` of an invalidation message, or None if it is not one."""
    try:
        origin, key = json.loads(message)
    except (ValueError, TypeError):
        return None
    return (origin, key) if isinstance(origin, str) and isinstance(key, str) else None


def load_entry(
    key: str, codec: EnvelopeCodec, stats: CacheStats, with_ttl: bool = True
) -> Flow[Entry | None]:
    """Read an entry and (``with_ttl``) its remaining TTL in one round trip; an undecodable
    one is dropped (if unchanged) and is a miss, as is a key of another type (the next write
    replaces it). Without the TTL the entry's ``remaining`` is inf: fresh while it exists."""
    read = Command(("GET", key), errors_as_reply=True)
    if with_ttl:
        raw, pttl = yield Batch((read, Command(("PTTL", key), errors_as_reply=True)))
    else:
        raw, pttl = (yield read), -1
    if isinstance(raw, BackendError):
        stats.decode_errors += 1  # e.g. WRONGTYPE
        return None
    if raw is None:
        return None
    try:
        envelope = codec.decode(raw)
    except (ValueError, ValidationError):
        yield from drop_corrupt(key, raw, stats)
        return None
    return Entry(envelope.value, envelope.compute_seconds, remaining_seconds(pttl))


def store_entry(
    key: str, data: bytes, ttl: int, channel: str, message: str, own_listeners: int
) -> Flow[bool]:
    """Write an entry with its TTL and announce it, so other processes drop their L1 copy."""
    args = (data, ttl, channel, message, own_listeners)
    return bool((yield Eval(STORE_AND_ANNOUNCE, (key,), args)))


class Claim(NamedTuple):
    """The outcome of trying to take the computation lease for a key."""

    acquired: bool
    lease_ms: int  # how long the current holder's lease still runs
    entry: Entry | None  # the value, if it landed meanwhile


def lease_key(key: str) -> str:
    """The lease key of an entry (beside it, and in its cluster slot when the key has a tag)."""
    return f"{key}:lease"


def claim_lease(
    key: str, token: str, lease_ms: int, codec: EnvelopeCodec, stats: CacheStats
) -> Flow[Claim]:
    """Try to take the lease; in the same round trip learn its remaining time and the value."""
    lease = lease_key(key)
    replies = yield Batch(
        (
            Command(("SET", lease, token, "NX", "PX", lease_ms)),
            Command(("PTTL", lease)),
            Command(("GET", key)),
            Command(("PTTL", key)),
        )
    )
    acquired, remaining, raw = bool(replies[0]), int(replies[1]), replies[2]
    entry = None
    if raw is not None:
        try:
            envelope = codec.decode(raw)
        except (ValueError, ValidationError):
            yield from drop_corrupt(key, raw, stats)
        else:
            entry = Entry(envelope.value, envelope.compute_seconds, remaining_seconds(replies[3]))
    return Claim(acquired, max(remaining, 0), entry)


def release_lease(key: str, token: str, channel: str, message: str) -> Flow[bool]:
    """Give the lease back (if still ours) and wake the waiters."""
    return bool((yield Eval(RELEASE_LEASE, (lease_key(key),), (token, channel, message))))


def invalidate_entry(key: str, channel: str, message: str, own_listeners: int) -> Flow[bool]:
    """Delete an entry and announce it; True if it existed."""
    return bool((yield Eval(UNLINK_AND_ANNOUNCE, (key,), (channel, message, own_listeners))))
