"""The IdP's database: read from DATABASE_URL at start-up, and checked before the server serves.

The rules every Django process of the product follows (sso_client.database: PostgreSQL through
psycopg's pool sized for gunicorn's threads, a malformed URL one line naming its variable), plus
the IdP's own: SQLite, `make run`'s zero-set-up default, takes its write lock up front (several
gunicorn workers write at once), and no engine but PostgreSQL and SQLite is served.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from sso_client.database import POSTGRESQL, database_problem
from sso_client.database import database_config as shared_database_config

SQLITE = "django.db.backends.sqlite3"

__all__ = ["database_config", "database_problem"]


def database_config(url: str, *, variable: str, threads: str = "") -> dict:
    """Django's DATABASES entry for `url`, the value of the environment variable `variable`."""
    config = shared_database_config(url, variable=variable, threads=threads)
    if config["ENGINE"] == SQLITE:
        config["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
        # Persistent, one connection per thread (sso_client.database): opening one per request
        # (and running the PRAGMAs on it) was most of the time of a small request.
    elif config["ENGINE"] != POSTGRESQL:
        raise ImproperlyConfigured(
            f"{variable} names {config['ENGINE'].rsplit('.', 1)[-1]}: the IdP runs on PostgreSQL (postgres://…) "
            "or SQLite (sqlite:///PATH)."
        )
    return config
