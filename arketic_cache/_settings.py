"""Connection and cache settings, read from the environment only when asked.

A password never lives in a plain string: it is taken out of the URL (``user:pass@`` or
``?password=``) into a ``SecretStr``, so ``repr``, logs and ``get_info()`` cannot show it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import SplitResult, parse_qsl, quote, unquote, urlencode, urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from ._exceptions import ConfigurationError

__all__ = ["DEFAULT_REDIS_URL", "ENVIRONMENT_VARIABLES", "RedisSettings", "redact_url"]

DEFAULT_REDIS_URL = "redis://localhost:6379/0"

logger = logging.getLogger("arketic_cache")
SENTINEL_SCHEMES = frozenset({"redis+sentinel", "rediss+sentinel"})
CLUSTER_SCHEMES = frozenset({"redis+cluster", "rediss+cluster"})
SCHEMES = frozenset({"redis", "rediss", "unix", "memory", *SENTINEL_SCHEMES, *CLUSTER_SCHEMES})
_SECRET_QUERY_KEYS = {
    "password": "password",
    "ssl_password": "ssl_password",
    "sentinel_password": "sentinel_password",
}
#: The port of a sentinel named without one.
SENTINEL_PORT = 26379

#: Environment variable -> settings field.
ENVIRONMENT_VARIABLES: Mapping[str, str] = {
    "REDIS_URL": "url",
    "REDIS_PASSWORD": "password",
    "REDIS_SENTINEL_PASSWORD": "sentinel_password",
    "RESPONSE_CACHE_TTL": "default_ttl",
    "REDIS_MAX_CONNECTIONS": "max_connections",
    "REDIS_CONNECT_TIMEOUT": "connect_timeout",
    "REDIS_SOCKET_TIMEOUT": "socket_timeout",
    "REDIS_POOL_TIMEOUT": "pool_timeout",
    "REDIS_KEY_PREFIX": "key_prefix",
    "REDIS_PROTOCOL": "protocol",
    "REDIS_COHERENCE_GRACE": "coherence_grace",
}


class RedisSettings(BaseModel):
    """Everything needed to reach Redis and to apply the cache's defaults.

    Timeouts are short on purpose: redis-py 8's own defaults (5 s, ten retries) can hold a
    caller for about a minute on a hung server; a cache must give up in well under a second.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    url: str = DEFAULT_REDIS_URL
    password: SecretStr | None = None
    ssl_password: SecretStr | None = None
    #: The sentinels' own password (``requirepass`` of a sentinel), for redis+sentinel URLs.
    sentinel_password: SecretStr | None = None
    default_ttl: PositiveInt = 3600
    max_connections: PositiveInt = 20
    connect_timeout: PositiveFloat = 0.5
    socket_timeout: PositiveFloat = 0.5
    pool_timeout: PositiveFloat = 0.5
    key_prefix: str = ""
    #: RESP version of every connection: 3 by default; 2 for servers or proxies without RESP3.
    protocol: Literal[2, 3] = 3
    health_check_interval: NonNegativeFloat = 15.0
    breaker_threshold: PositiveInt = 3
    breaker_cooldown: PositiveFloat = 2.0
    max_value_bytes: PositiveInt = 1024 * 1024
    max_key_bytes: PositiveInt = 1024
    #: While L1 coherence is lost, no L1 entry is served longer than this (seconds).
    coherence_grace: PositiveFloat = 2.0
    #: The invalidation listener PINGs an idle connection this often (seconds) ...
    listener_ping_interval: PositiveFloat = 1.0
    #: ... and counts the server as gone when nothing answers within this (seconds).
    listener_ping_timeout: PositiveFloat = 1.0

    @field_validator("protocol", mode="before")
    @classmethod
    def _protocol_from_text(cls, value: Any) -> Any:
        # From the environment it arrives as text; a Literal does not coerce it.
        return int(value) if isinstance(value, str) and value.strip().isdigit() else value

    @model_validator(mode="before")
    @classmethod
    def _take_secrets_out_of_url(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("url"), str):
            return data
        url, secrets = split_url_secrets(data["url"])
        if _verification_off(url):
            logger.warning(
                "TLS certificate verification is off (ssl_cert_reqs=none): any server can "
                "pose as this Redis; use ssl_cert_reqs=required with ssl_ca_certs instead"
            )
        merged = {**data, "url": url}
        for field, value in secrets.items():
            # An explicit argument (e.g. REDIS_PASSWORD) wins over the URL's.
            if merged.get(field) is None:
                merged[field] = value
        return merged

    @classmethod
    def create(cls, **values: Any) -> RedisSettings:
        """Build settings, raising ConfigurationError with no input echoed back.

        Raises:
            ConfigurationError: a value is invalid; the message names the field.
        """
        try:
            return cls(**values)
        except ValidationError as exc:
            for err in exc.errors(include_input=False, include_url=False):
                cause = err.get("ctx", {}).get("error")
                if isinstance(cause, ConfigurationError):
                    raise cause from None
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
                for err in exc.errors(include_input=False, include_url=False)
            )
            raise ConfigurationError(f"invalid Redis settings: {problems}") from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> RedisSettings:
        """Read the settings from the environment; explicit ``overrides`` win.

        Raises:
            ConfigurationError: a variable holds an invalid value.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {
            field: env[name] for name, field in ENVIRONMENT_VARIABLES.items() if env.get(name)
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.create(**values)

    @property
    def scheme(self) -> str:
        """The URL scheme: redis, rediss, unix, memory, redis+sentinel, rediss+sentinel,
        redis+cluster or rediss+cluster."""
        return urlsplit(self.url).scheme

    @property
    def cluster(self) -> list[tuple[str, int]] | None:
        """For a ``redis+cluster://h1[:p],h2[:p]`` URL: the seed nodes' (host, port) pairs
        (port 6379 by default); else None."""
        if self.scheme not in CLUSTER_SCHEMES:
            return None
        return _cluster_seeds(urlsplit(self.url))

    @property
    def sentinel(self) -> tuple[list[tuple[str, int]], str, int] | None:
        """For a ``redis+sentinel://h1[:p],h2[:p]/service[/db]`` URL: the sentinels' (host,
        port) pairs (port 26379 by default), the service name and the database; else None."""
        if self.scheme not in SENTINEL_SCHEMES:
            return None
        return _sentinel_parts(urlsplit(self.url))

    @property
    def endpoint(self) -> tuple[str, int | None, str]:
        """(address, port, database index) without credentials: ``("db.internal", 6380,
        "2")``, ``("/run/redis.sock", None, "0")`` or ``("memory://name", None, "0")``."""
        parts = urlsplit(self.url)
        if parts.scheme in SENTINEL_SCHEMES:
            _, service, db = _sentinel_parts(parts)
            return f"sentinel:{service}", None, str(db)
        if parts.scheme in CLUSTER_SCHEMES:
            host, port = _cluster_seeds(parts)[0]
            return host, port, "0"
        if parts.scheme == "memory":
            return (f"memory://{parts.hostname}" if parts.hostname else "memory"), None, "0"
        if parts.scheme == "unix":
            return parts.path, None, dict(parse_qsl(parts.query)).get("db", "0")
        return parts.hostname or "localhost", parts.port or 6379, parts.path.strip("/") or "0"

    @property
    def display_url(self) -> str:
        """The URL as it may be shown: any password replaced by ``***``."""
        return redact_url(self.url, masked=self.password is not None)


def _join(scheme: str, netloc: str, path: str, query: str, fragment: str) -> str:
    # urlunsplit drops the '//' of an empty host (unix:///sock), which redis-py rejects.
    url = f"{scheme}://{netloc}{path}"
    return url + (f"?{query}" if query else "") + (f"#{fragment}" if fragment else "")


_UNPARSEABLE = (
    "cannot parse the Redis URL (percent-encode '/', '@', ':', '#', '?' and '%' in a password)"
)


def split_url_secrets(url: str) -> tuple[str, dict[str, SecretStr]]:
    """Return ``url`` without its passwords, and the passwords found in it.

    Raises:
        ConfigurationError: the URL cannot be parsed or has an unknown scheme (never echoed).
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ConfigurationError(_UNPARSEABLE) from None
    if parts.scheme not in SCHEMES:
        raise ConfigurationError(
            f"unsupported Redis URL scheme {parts.scheme!r}: use one of {sorted(SCHEMES)}"
        )
    query_keys = [key for key, _ in parse_qsl(parts.query, keep_blank_values=True)]
    # An unencoded '/', '?' or '#' in a password ends the netloc early: the '@' that ends up
    # in the path, query or fragment gives it away.
    if "@" in parts.path or "@" in parts.fragment or any("@" in key for key in query_keys):
        raise ConfigurationError(_UNPARSEABLE)
    if parts.scheme in SENTINEL_SCHEMES:
        _sentinel_parts(parts)  # validates hosts, ports, service and database
    elif parts.scheme in CLUSTER_SCHEMES:
        _cluster_seeds(parts)  # validates hosts, ports and the (absent) database
    else:
        try:
            _ = parts.port
        except ValueError:
            raise ConfigurationError(
                "the port in the Redis URL must be a number from 1 to 65535"
            ) from None
    if parts.scheme in {"redis", "rediss"}:
        if not parts.hostname:
            raise ConfigurationError("a redis:// or rediss:// URL needs a host")
        if parts.path.strip("/") and not parts.path.strip("/").isdigit():
            raise ConfigurationError(
                "the path of a redis:// URL is the database number, e.g. redis://host:6379/0"
            )
    secrets: dict[str, SecretStr] = {}
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, has_password, password = userinfo.partition(":")
        if has_password:
            secrets["password"] = SecretStr(unquote(password))
        netloc = f"{user}@{hostport}" if user else hostport
    query = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in _SECRET_QUERY_KEYS:
            secrets.setdefault(_SECRET_QUERY_KEYS[key], SecretStr(value))
        else:
            query.append((key, value))
    clean = _join(parts.scheme, netloc, parts.path, urlencode(query), parts.fragment)
    return clean, secrets


def _hosts(parts: SplitResult, default_port: int, example: str) -> list[tuple[str, int]]:
    """The comma-separated ``host[:port]`` list of a sentinel or cluster URL.

    Raises:
        ConfigurationError: no host, or a bad port.
    """
    hosts = parts.netloc.rpartition("@")[2]
    found = []
    for item in hosts.split(","):
        host, colon, port = item.strip().rpartition(":") if ":" in item else (item, "", "")
        host = host.strip("[]")
        if not host or (colon and not (port.isdigit() and 0 < int(port) < 65536)):
            raise ConfigurationError(
                f"a {parts.scheme}:// URL lists hosts as host[:port], comma-separated, "
                f"e.g. {example}"
            )
        found.append((host, int(port) if colon else default_port))
    return found


def _cluster_seeds(parts: SplitResult) -> list[tuple[str, int]]:
    """The seed nodes of a cluster URL.

    Raises:
        ConfigurationError: no seed, a bad port, or a database other than 0.
    """
    seeds = _hosts(parts, 6379, "redis+cluster://node1:6379,node2:6379")
    if parts.path.strip("/") not in ("", "0"):
        raise ConfigurationError("a Redis Cluster has one database (0): drop the URL's path")
    return seeds


def _sentinel_parts(parts: SplitResult) -> tuple[list[tuple[str, int]], str, int]:
    """(sentinels, service, db) of a sentinel URL.

    Raises:
        ConfigurationError: no sentinel, a bad port, no service name or a bad database.
    """
    sentinels = _hosts(parts, SENTINEL_PORT, "redis+sentinel://s1:26379,s2:26379/mymaster/0")
    segments = [segment for segment in parts.path.split("/") if segment]
    if not segments or len(segments) > 2 or (len(segments) == 2 and not segments[1].isdigit()):
        raise ConfigurationError(
            "the path of a redis+sentinel:// URL is /service_name[/db], e.g. /mymaster/0"
        )
    return sentinels, unquote(segments[0]), int(segments[1]) if len(segments) == 2 else 0


def _verification_off(url: str) -> bool:
    query = dict(parse_qsl(urlsplit(url).query))
    return query.get("ssl_cert_reqs", "").lower() in {"none", "cert_none"}


def redact_url(url: str, *, masked: bool = True) -> str:
    """Return ``url`` with any password (userinfo or query) replaced by ``***``."""
    try:
        clean, secrets = split_url_secrets(url)
    except ConfigurationError:
        return "<unparseable Redis URL>"
    if not (masked or secrets):
        return clean
    parts = urlsplit(clean)
    user, at, hostport = parts.netloc.rpartition("@")
    netloc = f"{quote(unquote(user), safe='') if at else ''}:***@{hostport if at else parts.netloc}"
    return _join(parts.scheme, netloc, parts.path, parts.query, parts.fragment)
