"""The IdP's database: read from DATABASE_URL at start-up, and checked before the server serves.

Built by the code every Django process of the product shares (sso_client.database: PostgreSQL
through psycopg's pool sized for gunicorn's threads, SQLite taking its write lock up front with a
busy timeout and WAL, a malformed URL one line naming its variable), plus the IdP's own rule: no
engine but PostgreSQL and SQLite is served.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from sso_client.database import POSTGRESQL, SQLITE, database_problem
from sso_client.database import database_config as shared_database_config

__all__ = ["SQLITE", "database_config", "database_problem"]


def database_config(url: str, *, variable: str, threads: str = "") -> dict:
    """Django's DATABASES entry for `url`, the value of the environment variable `variable`."""
    config = shared_database_config(url, variable=variable, threads=threads)
    if config["ENGINE"] not in (POSTGRESQL, SQLITE):
        raise ImproperlyConfigured(
            f"{variable} names {config['ENGINE'].rsplit('.', 1)[-1]}: the IdP runs on PostgreSQL (postgres://…) "
            "or SQLite (sqlite:///PATH)."
        )
    return config
