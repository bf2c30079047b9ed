"""DATABASE_URL becomes Django's DATABASES: PostgreSQL through psycopg's pool, SQLite as before."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from idp_server.database import database_config


def test_postgresql_goes_through_a_pool_sized_for_gunicorns_threads():
    config = database_config("postgres://sso:pw@db:5432/idp?sslmode=require", variable="DATABASE_URL", threads="6")
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["HOST"], config["PORT"], config["NAME"], config["USER"]) == ("db", 5432, "idp", "sso")
    assert config["CONN_MAX_AGE"] == 0, "Django's pool refuses persistent connections"
    assert config["OPTIONS"]["pool"] == {"min_size": 1, "max_size": 6, "timeout": 5, "reconnect_timeout": 10}
    assert config["OPTIONS"]["sslmode"] == "require", "the URL's own options are kept"


def test_the_pool_defaults_to_gunicorns_default_of_four_threads():
    config = database_config("postgresql://db/idp", variable="DATABASE_URL", threads="")
    assert config["OPTIONS"]["pool"]["max_size"] == 4


def test_sqlite_keeps_its_write_lock_options_and_no_pool(tmp_path):
    config = database_config(f"sqlite:///{tmp_path / 'idp.sqlite3'}", variable="DATABASE_URL")
    assert config["ENGINE"] == "django.db.backends.sqlite3"
    assert "pool" not in config["OPTIONS"]
    assert config["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert config["CONN_MAX_AGE"] is None, "one persistent connection per thread, not one per request"


@pytest.mark.parametrize(
    "url",
    ["not-a-url", "http://db/idp", "postgres://u:secret@db:port/idp", "postgres://u:secret@db:5432", "mysql://db/idp"],
)
def test_a_bad_url_is_one_message_naming_the_variable(url):
    with pytest.raises(ImproperlyConfigured) as raised:
        database_config(url, variable="DATABASE_URL")
    message = str(raised.value)
    assert message.startswith("DATABASE_URL ") and "\n" not in message
    assert "secret" not in message


@pytest.mark.parametrize("threads", ["0", "four", "-2"])
def test_a_bad_thread_count_names_gunicorn_threads(threads):
    with pytest.raises(ImproperlyConfigured, match="GUNICORN_THREADS"):
        database_config("postgres://db/idp", variable="DATABASE_URL", threads=threads)
