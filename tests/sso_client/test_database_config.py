"""A site's database entry is built by the same code as the IdP's: SQLite takes its write lock up
front, waits for it and runs in WAL mode; PostgreSQL's pool comes back soon after an outage."""

from __future__ import annotations

from sso_client.database import POOL_RECONNECT_SECONDS, SQLITE_OPTIONS, database_config


def test_a_sites_sqlite_waits_for_the_write_lock_instead_of_failing(tmp_path):
    config = database_config(f"sqlite:///{tmp_path / 'site.sqlite3'}", variable="SITE_A_DATABASE_URL")
    options = config["OPTIONS"]
    assert options["transaction_mode"] == "IMMEDIATE", "the write lock taken when a transaction begins"
    assert options["timeout"] >= 10, "a writer waits for the lock rather than answering 'database is locked'"
    assert "journal_mode=WAL" in options["init_command"], "readers go on while one writes"
    assert config["CONN_MAX_AGE"] is None


def test_the_idp_uses_the_very_same_sqlite_options(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "idp"))
    try:
        from idp_server.database import database_config as idp_database_config
    finally:
        sys.path.pop(0)
    url = f"sqlite:///{tmp_path / 'idp.sqlite3'}"
    assert idp_database_config(url, variable="DATABASE_URL")["OPTIONS"] == SQLITE_OPTIONS
    assert database_config(url, variable="SITE_A_DATABASE_URL")["OPTIONS"] == SQLITE_OPTIONS


def test_the_pool_tries_a_lost_connection_again_within_seconds():
    """psycopg's default lets its retries drift a minute apart during a long outage."""
    pool = database_config("postgres://site@db:5432/site_a", variable="SITE_A_DATABASE_URL")["OPTIONS"]["pool"]
    assert pool["reconnect_timeout"] == POOL_RECONNECT_SECONDS <= 15
