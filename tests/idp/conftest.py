"""The IdP's unit tests run on PostgreSQL when there is one: TEST_DATABASE_URL, else a private server.

pytest-django creates its own test database (a uniquely named `test_idp_…`) on that server and
drops it at the end; without PostgreSQL the tests stay on the settings' SQLite, in memory.
"""

from __future__ import annotations

import contextlib

import pytest

from devstack.postgres_server import databases_for_tests, unique_name
from tests.database_report import database_used, pytest_report_header, pytest_terminal_summary  # noqa: F401  (hooks)
from tests.idp.backchannel_world import redis_server, retry_queue, sites  # noqa: F401  (fixtures)
from tests.log_capture import log_lines  # noqa: F401  (a fixture of the logging tests)


def _use_database(config: dict) -> None:
    """Point Django's default database at `config`, before any test database is created."""
    from django.conf import settings
    from django.db import connections

    default = settings.DATABASES["default"]
    default.clear()  # in place: Django's connection handler holds this very dict
    default.update(config)
    connections.configure_settings(settings.DATABASES)  # the keys Django fills in
    with contextlib.suppress(AttributeError):  # a wrapper made for the old engine, if any
        del connections["default"]
    assert connections["default"].settings_dict["ENGINE"] == config["ENGINE"]


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    from idp_server.database import database_config

    with databases_for_tests(tmp_path_factory.mktemp("databases")) as databases:
        database_used(databases.description)
        if databases.kind == "postgresql":
            config = database_config(databases.url, variable="TEST_DATABASE_URL")
            config["TEST"] = {"NAME": unique_name("test_idp")}  # never an existing database
            _use_database(config)
        yield


@pytest.fixture(autouse=True)
def _client_origins_forgotten():
    """provider.csp keeps the clients' origins per process: a rolled-back test's must not linger."""
    from provider.csp import client_origins_forget

    client_origins_forget()
    yield
    client_origins_forget()
