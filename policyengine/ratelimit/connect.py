"""Where the Redis store lives, and the redis-py clients that reach it.

A store URL names one of the deployments people run:

- `redis://`, `rediss://` (TLS), `unix://`: one server, read by redis-py's `from_url`;
- `redis+cluster://[user:pass@]host:port[,host:port...]` (`rediss+cluster://` for TLS):
  a Redis Cluster, found from any of the nodes named;
- `redis+sentinel://[user:pass@]host:port[,host:port...]/service-name[/db]`: the primary
  that the Sentinels name for `service-name`, followed across failovers.

The URL's user and password are the data nodes' (an ACL user, or `requirepass` with no
user); they are kept out of every repr, message and log line (`StoreAddress.redact`).
TLS verifies the server's certificate and host name by default, against `ca_file` when
given, else the system's trust store.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import unquote

if TYPE_CHECKING:  # redis-py is imported when a client is made: parsing a URL needs none
    from redis import Redis
    from redis.asyncio import Redis as AsyncRedis
    from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
    from redis.cluster import RedisCluster
    from redis.sentinel import SentinelConnectionPool

    SyncClient: TypeAlias = Redis | RedisCluster
    AsyncClient: TypeAlias = AsyncRedis | AsyncRedisCluster

DEFAULT_PREFIX = "policyengine:rl:"
CLUSTER_PREFIX = "{policyengine}:rl:"  # the hash tag puts every key in one slot
SINGLE_SCHEMES = ("redis://", "rediss://", "unix://")
CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")
SENTINEL_SCHEMES = ("redis+sentinel://",)
STORE_SCHEMES = SINGLE_SCHEMES + CLUSTER_SCHEMES + SENTINEL_SCHEMES
DEFAULT_PORTS = {"cluster": 6379, "sentinel": 26379}


class Deployment(StrEnum):
    SINGLE = "single"
    CLUSTER = "cluster"
    SENTINEL = "sentinel"


@dataclass(frozen=True, slots=True)
class StoreAddress:
    """A parsed store URL. Only `url` (for one server) and `password` hold secrets."""

    deployment: Deployment
    url: str = field(repr=False)  # as given: redis-py reads a single server's URL itself
    tls: bool = False
    nodes: tuple[tuple[str, int], ...] = ()  # cluster nodes, or Sentinels
    service: str = ""  # Sentinel: the primary's name
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def redact(self, text: str) -> str:
        """`text` (a driver's error message) with the password taken out."""
        for secret in (self.password, _password_of(self.url)):
            if secret:
                text = text.replace(secret, "***")
        return text

    @property
    def default_prefix(self) -> str:
        return CLUSTER_PREFIX if self.deployment is Deployment.CLUSTER else DEFAULT_PREFIX

    def check_prefix(self, prefix: str) -> None:
        """A cluster runs a script only over keys of one slot: a request's keys must
        share a hash tag, which the prefix (the start of every key) carries."""
        if self.deployment is Deployment.CLUSTER and not has_hash_tag(prefix):
            raise ValueError(
                f"the key prefix `{prefix}` has no hash tag: Redis Cluster needs one "
                f"(e.g. `{CLUSTER_PREFIX}`) so that one request's keys are in one slot"
            )


@dataclass(frozen=True, slots=True)
class ClientOptions:
    timeout_s: float  # connect, and each answer
    pool_size: int  # connections shared by threads (sync client)
    ca_file: str | None = None


def has_hash_tag(prefix: str) -> bool:
    """Redis's rule: the text between the first `{` and the first `}` after it, if any."""
    start = prefix.find("{")
    end = prefix.find("}", start + 1) if start >= 0 else -1
    return end > start + 1


def parse_store_url(url: str, *, ca_file: str | None = None) -> StoreAddress:
    """The deployment a URL names; a ValueError (naming no secret) when it is malformed."""
    if url.startswith(SINGLE_SCHEMES):
        address = StoreAddress(Deployment.SINGLE, url, tls=url.startswith("rediss://"))
    elif url.startswith(CLUSTER_SCHEMES):
        address = _parse_nodes(url, Deployment.CLUSTER)
    elif url.startswith(SENTINEL_SCHEMES):
        address = _parse_nodes(url, Deployment.SENTINEL)
    else:
        scheme = url.split("://", 1)[0] if "://" in url else ""  # the rest may hold a password
        raise ValueError(
            f"unsupported rate-limit store `{scheme}`: use a redis://, rediss://, unix://, "
            "redis+cluster://, rediss+cluster:// or redis+sentinel:// URL"
        )
    if ca_file is not None and not address.tls:
        raise ValueError("a CA file is for TLS: use a rediss:// or rediss+cluster:// URL")
    return address


def _parse_nodes(url: str, deployment: Deployment) -> StoreAddress:
    scheme, rest = url.split("://", 1)
    if "?" in rest or "#" in rest:
        raise ValueError(f"{scheme}:// URLs take no query options")
    netloc, _, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    username, password = None, None
    if at:
        user, _, secret = userinfo.partition(":")
        username, password = unquote(user) or None, unquote(secret) or None
    nodes = tuple(_host_port(part, DEFAULT_PORTS[deployment]) for part in hosts.split(","))
    parts = [part for part in path.split("/") if part]
    service, db = "", 0
    if deployment is Deployment.SENTINEL:
        if not 1 <= len(parts) <= 2:
            raise ValueError("a redis+sentinel:// URL ends in /service-name or /service-name/db")
        service, db = unquote(parts[0]), _db(parts[1:])
    elif parts and parts != ["0"]:
        raise ValueError("a Redis Cluster has database 0 only")
    return StoreAddress(
        deployment, url, scheme.startswith("rediss"), nodes, service, db, username, password
    )


def _host_port(text: str, default_port: int) -> tuple[str, int]:
    if text.startswith("["):  # [IPv6]:port
        host, _, tail = text[1:].partition("]")
        port = tail.removeprefix(":")
    else:
        host, _, port = text.rpartition(":") if ":" in text else (text, "", "")
    if not host:
        raise ValueError(f"`{text}` is no host:port")
    if not port:
        return host, default_port
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"`{text}` has no valid port")
    return host, int(port)


def _db(parts: list[str]) -> int:
    if not parts:
        return 0
    if not parts[0].isdigit():
        raise ValueError("the database after the Sentinel service name is a number")
    return int(parts[0])


def _password_of(url: str) -> str | None:
    netloc = url.split("://", 1)[-1].split("/", 1)[0]
    userinfo, at, _ = netloc.rpartition("@")
    return unquote(userinfo.partition(":")[2]) or None if at else None


# -- clients -------------------------------------------------------------------------------
# No connection yet: redis-py connects on the first command, and again after errors.
# One retry, at once, and only for a broken connection (a pooled one after a Redis
# restart): never for a timeout. A thread waits up to timeout_s for a free connection,
# then up to timeout_s for the answer.


def _common(address: StoreAddress, options: ClientOptions) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "socket_timeout": options.timeout_s,
        "socket_connect_timeout": options.timeout_s,
    }
    if address.deployment is not Deployment.SINGLE:
        kwargs |= {"username": address.username, "password": address.password}
    if address.tls and address.deployment is not Deployment.SINGLE:
        kwargs |= {"ssl": True, "ssl_cert_reqs": "required", "ssl_check_hostname": True}
    if options.ca_file is not None:
        kwargs["ssl_ca_certs"] = options.ca_file
    return kwargs


@functools.cache
def _blocking_sentinel_pool() -> type[SentinelConnectionPool]:
    from redis import BlockingConnectionPool
    from redis.sentinel import SentinelConnectionPool

    class BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
        """The primary's connections, threads waiting for a free one as with one server."""

    return BlockingSentinelPool


def sync_client(address: StoreAddress, options: ClientOptions) -> SyncClient:
    from redis import BlockingConnectionPool, Redis
    from redis.backoff import NoBackoff
    from redis.cluster import ClusterNode, RedisCluster
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.retry import Retry
    from redis.sentinel import Sentinel

    kwargs = _common(address, options)
    retry = Retry(NoBackoff(), 1, (RedisConnectionError,))
    blocking: dict[str, Any] = {"max_connections": options.pool_size, "timeout": options.timeout_s}
    if address.deployment is Deployment.CLUSTER:
        nodes = [ClusterNode(host, port) for host, port in address.nodes]  # type: ignore[no-untyped-call]
        return RedisCluster(
            startup_nodes=nodes,
            connection_pool_class=BlockingConnectionPool,
            retry=Retry(NoBackoff(), 1),  # a cluster retries its own errors, timeouts too
            **blocking,
            **kwargs,
        )
    if address.deployment is Deployment.SENTINEL:
        sentinel = Sentinel(list(address.nodes), sentinel_kwargs=_sentinel_kwargs(options))
        client: Redis = sentinel.master_for(
            address.service,
            connection_pool_class=_blocking_sentinel_pool(),
            db=address.db,
            retry=retry,
            **blocking,
            **kwargs,
        )
        return client
    pool = BlockingConnectionPool.from_url(address.url, retry=retry, **blocking, **kwargs)
    return Redis(connection_pool=pool)


def async_client(address: StoreAddress, options: ClientOptions) -> AsyncClient:
    """A client for the running event loop: asyncio connections belong to their loop."""
    from redis.asyncio import Redis as AsyncRedis
    from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
    from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
    from redis.asyncio.retry import Retry as AsyncRetry
    from redis.asyncio.sentinel import Sentinel as AsyncSentinel
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError

    kwargs = _common(address, options)
    retry = AsyncRetry(NoBackoff(), 1, (RedisConnectionError,))
    if address.deployment is Deployment.CLUSTER:
        nodes = [AsyncClusterNode(host, port) for host, port in address.nodes]
        return AsyncRedisCluster(startup_nodes=nodes, retry=AsyncRetry(NoBackoff(), 1), **kwargs)
    if address.deployment is Deployment.SENTINEL:
        sentinel = AsyncSentinel(list(address.nodes), sentinel_kwargs=_sentinel_kwargs(options))
        client: AsyncRedis = sentinel.master_for(
            address.service, db=address.db, retry=retry, **kwargs
        )
        return client
    return AsyncRedis.from_url(address.url, retry=retry, **kwargs)


def _sentinel_kwargs(options: ClientOptions) -> dict[str, Any]:
    return {"socket_timeout": options.timeout_s, "socket_connect_timeout": options.timeout_s}
