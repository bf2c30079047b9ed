"""A site's database: read from its URL variable in settings, and checked before the site serves.

In settings (see client_site_a/site_a/settings.py): `DATABASES = {"default": database_config(url,
variable=NAME, threads=...)}` with the URL read from the site's variable NAME, and
`SSO_DATABASE_URL_VARIABLE = NAME` (the name start-up errors tell to set).
`database_config` needs dj-database-url (and psycopg[pool] for PostgreSQL) installed. The IdP
keeps the same rules in `idp_server.database`.
"""

from __future__ import annotations

import re

from django.core.exceptions import ImproperlyConfigured

POSTGRESQL = "django.db.backends.postgresql"
#: How long the start-up check waits for the database before it gives up.
CONNECT_TIMEOUT_SECONDS = 3
#: How long a request waits for a pooled connection (all in use, or the database slow to answer).
POOL_TIMEOUT_SECONDS = 5


def pool_size(threads: str) -> int:
    """gunicorn's threads per worker, from GUNICORN_THREADS as gunicorn.conf.py reads it (4 when unset)."""
    try:
        size = int(threads or 4)
    except ValueError:
        size = 0
    if size < 1:
        raise ImproperlyConfigured(f"GUNICORN_THREADS must be a whole number of 1 or more, not {threads!r}.")
    return size


def database_config(url: str, *, variable: str, threads: str = "") -> dict:
    """Django's DATABASES entry for `url`, the value of the environment variable `variable`.

    PostgreSQL goes through psycopg's connection pool, one pool per process sized for gunicorn's
    `threads` per worker: every thread can hold a connection and none waits for one, while an
    idle process keeps a single one open. Other engines (SQLite, a local run's default) keep a
    persistent connection per thread. A malformed URL is one ImproperlyConfigured naming `variable`.
    """
    import dj_database_url  # the sites' requirement (requirements.txt), not sso_client's own

    try:
        config = dj_database_url.parse(url)
    except ValueError as error:
        reason = re.split(r"[.,] ", str(error))[0]  # dj_database_url's first words say what is wrong
        raise ImproperlyConfigured(
            f"{variable} is not a database URL ({reason}): use postgres://USER:PASSWORD@HOST:PORT/NAME "
            "or sqlite:///PATH."
        ) from None
    if config["ENGINE"] == POSTGRESQL:
        if not config["NAME"]:
            raise ImproperlyConfigured(f"{variable} names no database: use postgres://USER:PASSWORD@HOST:PORT/NAME.")
        config["CONN_MAX_AGE"] = 0  # the pool keeps the connections; Django's persistent ones would not mix
        config["CONN_HEALTH_CHECKS"] = True  # the pool checks a connection before lending it out
        config["OPTIONS"] = {
            "connect_timeout": 5,
            **config.get("OPTIONS", {}),
            "pool": {"min_size": 1, "max_size": pool_size(threads), "timeout": POOL_TIMEOUT_SECONDS},
        }
    else:
        # SQLite, a local run's default (or any other engine Django has): Django keeps one
        # connection per thread for the life of the process, instead of opening one per request.
        config["CONN_MAX_AGE"] = None
    return config


def database_problem(variable: str | None = None, alias: str = "default") -> str | None:
    """None when the database answers; otherwise one line saying what is wrong and what to set.

    PostgreSQL is asked over a connection of its own with a short timeout, never through the
    pool: with gunicorn's preload_app this runs in the master, and a pool opened there would be
    copied, threads and sockets, into every worker.
    """
    from django.conf import settings as django_settings
    from django.db import connections

    variable = variable or getattr(django_settings, "SSO_DATABASE_URL_VARIABLE", "DATABASE_URL")
    connection = connections[alias]
    settings = connection.settings_dict
    try:
        if settings["ENGINE"] == POSTGRESQL:
            import psycopg

            params = {**connection.get_connection_params(), "connect_timeout": CONNECT_TIMEOUT_SECONDS}
            with psycopg.connect(**params) as direct:
                direct.execute("SELECT 1")
        else:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT 1")
            finally:
                connection.close()
    except Exception as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        where = describe(settings)
        return f"Cannot reach the database ({where}): {reason}. Start it or set {variable} to a running one."
    return None


def describe(settings: dict) -> str:
    """Where a DATABASES entry points, without its password."""
    if settings["ENGINE"] == POSTGRESQL:
        host = settings.get("HOST") or "localhost"
        port = settings.get("PORT") or 5432
        return f"PostgreSQL at {host}:{port}/{settings.get('NAME')}"
    return f"SQLite at {settings.get('NAME')}"
