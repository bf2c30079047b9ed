"""Which Redis a process uses, read in one place: one server, or a primary watched by Sentinels.

One server:

    REDIS_URL=redis://:password@redis.internal:6379/0

Redis Sentinel (automatic failover to a replica; the URL's host is the Sentinel service name):

    REDIS_URL=redis://:password@mymaster/0
    REDIS_SENTINELS=10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379
    REDIS_SENTINEL_PASSWORD=...        # only when the Sentinels themselves ask for one

The IdP, the sites and the IdP's back-channel worker all read it here, so they follow the same
primary. Everything goes to the primary, reads too: a session written by one request must be
there for the next, which a replica lagging behind cannot promise.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

DEFAULT_URL = "redis://127.0.0.1:6379/0"
JSON_SERIALIZER = "django_redis.serializers.json.JSONSerializer"
#: How long a process waits for Redis (and for a Sentinel) before it answers 503.
TIMEOUT_SECONDS = 2.0


def redacted(url: str) -> str:
    """`url` with any password replaced, fit to print."""
    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return parts._replace(netloc=netloc).geturl()
    return url


def first_line(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def parse_sentinels(text: str) -> tuple[tuple[str, int], ...]:
    """REDIS_SENTINELS: `host:port` entries separated by commas; raise ImproperlyConfigured naming it."""
    sentinels = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        host, _, port = entry.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ImproperlyConfigured(f"REDIS_SENTINELS: {entry!r} is not host:port (e.g. 10.0.0.1:26379).")
        sentinels.append((host.strip("[]"), int(port)))
    return tuple(sentinels)


@dataclass(frozen=True)
class RedisDeployment:
    url: str = DEFAULT_URL
    sentinels: tuple[tuple[str, int], ...] = ()
    sentinel_password: str | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> RedisDeployment:
        deployment = cls(
            url=environ.get("REDIS_URL") or DEFAULT_URL,
            sentinels=parse_sentinels(environ.get("REDIS_SENTINELS", "")),
            sentinel_password=environ.get("REDIS_SENTINEL_PASSWORD") or None,
        )
        if deployment.sentinels and not urlsplit(deployment.url).hostname:
            raise ImproperlyConfigured(
                "REDIS_URL must name the Sentinel service as its host (redis://:password@mymaster/0) "
                "when REDIS_SENTINELS is set."
            )
        return deployment

    @classmethod
    def from_cache(cls, cache: Mapping) -> RedisDeployment:
        """The deployment behind a django-redis CACHES entry (a site may write its own)."""
        options = cache.get("OPTIONS", {})
        location = cache.get("LOCATION", DEFAULT_URL)
        return cls(
            url=location[0] if isinstance(location, (list, tuple)) else location,
            sentinels=tuple(tuple(sentinel) for sentinel in options.get("SENTINELS", ())),
            sentinel_password=(options.get("SENTINEL_KWARGS") or {}).get("password"),
        )

    @property
    def service(self) -> str | None:
        """The Sentinel service name, or None for one server."""
        return urlsplit(self.url).hostname if self.sentinels else None

    def describe(self) -> str:
        """Where Redis is, without a password."""
        if not self.sentinels:
            return redacted(self.url)
        return f"Sentinel service {self.service!r} ({', '.join(f'{h}:{p}' for h, p in self.sentinels)})"

    def cache(self, *, key_prefix: str) -> dict:
        """A CACHES entry (django-redis, JSON values, bounded waits) for this deployment."""
        options: dict[str, object] = {
            "SOCKET_CONNECT_TIMEOUT": TIMEOUT_SECONDS,
            "SOCKET_TIMEOUT": TIMEOUT_SECONDS,
            # JSON, not django-redis's default pickle: a pickle written to the shared Redis by
            # anyone would run as code here (a system check refuses pickle).
            "SERIALIZER": JSON_SERIALIZER,
        }
        if self.sentinels:
            # django-redis's Sentinel connection factory with its default client: every command
            # goes to the primary the Sentinels name (its SentinelClient would read from replicas).
            options["CONNECTION_FACTORY"] = "django_redis.pool.SentinelConnectionFactory"
            options["SENTINELS"] = list(self.sentinels)
            options["SENTINEL_KWARGS"] = self._sentinel_kwargs()
        return {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": self.url,
            "KEY_PREFIX": key_prefix,
            "OPTIONS": options,
        }

    def client(self, *, timeout: float = TIMEOUT_SECONDS):
        """A redis-py client of the primary, following it across a failover (one per process)."""
        return _client(self, timeout)

    def problem(self) -> str | None:
        """None when the primary answers; otherwise one line naming the setting to look at."""
        import redis

        from sso_client.health import redis_cluster_problem

        if self.sentinels and (problem := self._sentinel_problem()):
            return problem
        try:
            client = _new_client(self, TIMEOUT_SECONDS)
            try:
                client.ping()
                return redis_cluster_problem(client)
            finally:
                client.close()
        except redis.AuthenticationError as error:
            return f"REDIS_URL: Redis at {self.describe()} refused the password ({first_line(error)})."
        except (redis.RedisError, ValueError, OSError) as error:
            return (
                f"Cannot reach Redis at {self.describe()} ({first_line(error)}). "
                "Start Redis or set REDIS_URL to a running one."
            )

    def _sentinel_kwargs(self) -> dict:
        kwargs: dict[str, object] = {"socket_connect_timeout": TIMEOUT_SECONDS, "socket_timeout": TIMEOUT_SECONDS}
        if self.sentinel_password:
            kwargs["password"] = self.sentinel_password
        return kwargs

    def _sentinel_problem(self) -> str | None:
        """Ask each Sentinel for the service's primary: unreachable, refusing, or not knowing it."""
        import redis

        unreachable, known = [], False
        for host, port in self.sentinels:
            try:
                with redis.Redis(host=host, port=port, **self._sentinel_kwargs()) as sentinel:
                    address = sentinel.sentinel_get_master_addr_by_name(self.service)
            except redis.AuthenticationError as error:
                return f"REDIS_SENTINEL_PASSWORD: the Sentinel at {host}:{port} refused it ({first_line(error)})."
            except (redis.RedisError, OSError) as error:
                unreachable.append(f"{host}:{port}: {first_line(error)}")
                continue
            known = known or bool(address)
        if len(unreachable) == len(self.sentinels):
            return f"REDIS_SENTINELS: no Sentinel answers ({'; '.join(unreachable)})."
        if not known:
            return (
                f"REDIS_URL names the Sentinel service {self.service!r}, which the Sentinels in "
                "REDIS_SENTINELS do not know."
            )
        return None


@lru_cache(maxsize=8)
def _client(deployment: RedisDeployment, timeout: float):
    return _new_client(deployment, timeout)


def _new_client(deployment: RedisDeployment, timeout: float):
    import redis
    from redis.sentinel import Sentinel

    if not deployment.sentinels:
        return redis.Redis.from_url(deployment.url, socket_connect_timeout=timeout, socket_timeout=timeout)
    parts = urlsplit(deployment.url)
    database = int(parts.path.strip("/") or 0)
    sentinels = Sentinel(
        list(deployment.sentinels),
        sentinel_kwargs={**deployment._sentinel_kwargs(), "socket_timeout": timeout},
    )
    return sentinels.master_for(
        deployment.service,
        username=parts.username or None,
        password=parts.password or None,
        db=database,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
    )


def is_redis_outage(error: BaseException | None) -> bool:
    """Whether `error` (or what caused it) is Redis unreachable, timing out, or failing over.

    django-redis wraps redis-py's errors in its own ConnectionInterrupted (a socket timeout too); a
    Sentinel that knows no primary yet raises MasterNotFoundError, a ConnectionError; a primary
    just demoted answers READONLY, a replica without its primary MASTERDOWN.
    """
    try:
        import redis
        from django_redis.exceptions import ConnectionInterrupted
    except ImportError:
        return False
    wrapped = False
    for _ in range(10):  # a chain of causes, never a cycle
        if error is None:
            return False
        if isinstance(error, ConnectionInterrupted):
            if error.__cause__ is None:
                return True
            wrapped = True
        elif (
            isinstance(error, (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError))
            or (isinstance(error, redis.ResponseError) and str(error).startswith("MASTERDOWN"))
            or (wrapped and isinstance(error, (ConnectionError, TimeoutError)))
        ):
            return True
        error = error.__cause__ or error.__context__
    return False
