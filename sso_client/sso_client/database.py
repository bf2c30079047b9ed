"""A site's database: read from its URL variable in settings, and checked before the site serves.

In settings (see client_site_a/site_a/settings.py): `DATABASES = {"default": database_config(url,
variable=NAME, threads=...)}` with the URL read from the site's variable NAME, and
`SSO_DATABASE_URL_VARIABLE = NAME` (the name start-up errors tell to set).
`database_config` needs dj-database-url (and psycopg[pool] for PostgreSQL) installed. The IdP
builds its entry here too (`idp_server.database` only adds which engines it serves).
"""

from __future__ import annotations

import re

from django.core.exceptions import ImproperlyConfigured

POSTGRESQL = "django.db.backends.postgresql"
SQLITE = "django.db.backends.sqlite3"
#: How long the start-up check waits for the database before it gives up.
CONNECT_TIMEOUT_SECONDS = 3
#: How long a request waits for a pooled connection (all in use, or the database slow to answer).
POOL_TIMEOUT_SECONDS = 5
#: How long the pool keeps retrying a lost connection (after 1, 2, 4… seconds) before it gives
#: up; the next request then starts a new try at once. psycopg's default, 5 minutes, would let
#: the delays grow so long that after a long outage a process went on answering 503 for a minute
#: or more with the database back (a 40-second outage: 21 s more; with this, under a second).
POOL_RECONNECT_SECONDS = 10
#: SQLite (`make run`'s default), as several gunicorn workers and threads write it at once: a
#: transaction takes the write lock when it begins (IMMEDIATE), not when it first writes, so two
#: of them never deadlock upgrading their locks (SQLite answers "database is locked" at once,
#: without waiting); a writer waits up to `timeout` seconds for the lock; WAL lets readers go on
#: while one writes.
SQLITE_OPTIONS = {
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}


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
    idle process keeps a single one open; connections lost (the server restarted) are replaced.
    Other engines (SQLite, a local run's default) keep a persistent connection per thread, and
    SQLite gets SQLITE_OPTIONS. A malformed URL is one ImproperlyConfigured naming `variable`.
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
            "pool": {
                "min_size": 1,
                "max_size": pool_size(threads),
                "timeout": POOL_TIMEOUT_SECONDS,
                "reconnect_timeout": POOL_RECONNECT_SECONDS,
            },
        }
    else:
        # SQLite, a local run's default (or any other engine Django has): Django keeps one
        # connection per thread for the life of the process, instead of opening one per request
        # (and running SQLITE_OPTIONS' PRAGMAs on it, most of the time of a small request).
        config["CONN_MAX_AGE"] = None
        if config["ENGINE"] == SQLITE:
            config["OPTIONS"] = {**config.get("OPTIONS", {}), **SQLITE_OPTIONS}
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
            ask_directly(connection)
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


#: PostgreSQL's error codes (SQLSTATE) of a server that cannot be reached or is going away: the
#: connection exceptions (class 08), shutting down or starting up (57P01 admin_shutdown, 57P02
#: crash_shutdown, 57P03 cannot_connect_now, as a restart answers), and no connection slot free.
POSTGRESQL_UNREACHABLE_STATES = ("08", "57P01", "57P02", "57P03", "53300")
#: SQLite's errors of a database file that cannot be used right now (not of a query that is wrong,
#: like "no such table"): locked by a writer beyond the busy timeout, or not to be opened or read.
SQLITE_UNREACHABLE_MESSAGES = (
    "database is locked",
    "database table is locked",
    "unable to open database file",
    "disk i/o error",
)


def is_database_outage(error: BaseException | None) -> bool:
    """Whether `error` is the database unreachable or lost mid-request, not a mistake in a query.

    Django raises its own OperationalError or InterfaceError caused by the driver's error, which
    is judged: for PostgreSQL, no connection to be had from the pool in time, the connection
    failing or lost (psycopg's client-side errors carry no SQLSTATE), or the server's SQLSTATE in
    POSTGRESQL_UNREACHABLE_STATES; for SQLite, SQLITE_UNREACHABLE_MESSAGES. Anything else (an
    unknown table, a violated constraint, bad data, any error that is not the database's) is not.
    """
    import sqlite3

    from django.db import Error as DjangoDatabaseError

    try:
        import psycopg
    except ImportError:  # a site on SQLite only
        psycopg = None
    for _ in range(10):  # a chain of causes, never a cycle
        if error is None:
            return False
        if psycopg is not None and isinstance(error, psycopg.Error):
            return _postgresql_unreachable(error, psycopg)
        if isinstance(error, sqlite3.Error):
            return isinstance(error, sqlite3.OperationalError) and str(error).lower().startswith(
                SQLITE_UNREACHABLE_MESSAGES
            )
        if not isinstance(error, DjangoDatabaseError):
            return False  # only the database's own errors are followed to their cause
        error = error.__cause__
    return False


def _postgresql_unreachable(error, psycopg) -> bool:
    state = getattr(error, "sqlstate", None)
    if state:
        return state.startswith(POSTGRESQL_UNREACHABLE_STATES)
    if isinstance(error, psycopg.OperationalError):
        # Raised by the client, not the server (which always gives a SQLSTATE): a connection
        # that failed, was lost or closed, or no connection from the pool (PoolTimeout).
        return True
    # An InterfaceError is mostly a misuse of the driver; only a closed connection is the database's.
    return isinstance(error, psycopg.InterfaceError) and any(
        closed in str(error) for closed in ("connection is closed", "connection already closed")
    )


def ask_directly(connection) -> None:
    """SELECT 1 over a PostgreSQL connection of its own with a short timeout, never the pool's:
    raises at once when the server is down, where the pool would wait POOL_TIMEOUT_SECONDS."""
    import psycopg

    params = {**connection.get_connection_params(), "connect_timeout": CONNECT_TIMEOUT_SECONDS}
    with psycopg.connect(**params) as direct:
        direct.execute("SELECT 1")
