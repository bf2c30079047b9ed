"""The database unreachable or lost mid-request: a readable 503 with Retry-After, never a 500, and
/-/health/ready/ naming the database. A mistake in a query stays a 500: it is not an outage."""

from __future__ import annotations

import json
import sqlite3

import psycopg
import pytest
from django import db
from django.db import connections
from django.test import Client
from psycopg import errors
from psycopg_pool import PoolTimeout

from sso_client import database
from tests.sso_client import outage_urls

pytestmark = pytest.mark.urls("tests.sso_client.outage_urls")


def wrapped(cause: BaseException, django_class: type[db.Error] = db.OperationalError) -> db.Error:
    """What a query raises: Django's error of the same name, caused by the driver's."""
    try:
        raise django_class(*cause.args) from cause
    except django_class as error:
        return error


def raised_while_handling(context: BaseException, error: BaseException) -> BaseException:
    try:
        try:
            raise context
        except type(context):
            raise error  # noqa: B904 - the implicit context is the point
    except type(error) as raised:
        return raised


OUTAGES = {
    "no-connection-from-the-pool": wrapped(PoolTimeout("couldn't get a connection after 5.00 sec")),
    "pool-timeout-unwrapped": PoolTimeout("couldn't get a connection after 5.00 sec"),
    "connection-refused": wrapped(
        psycopg.OperationalError('connection failed: connection to server at "127.0.0.1", port 5432 failed')
    ),
    "server-shutting-down": wrapped(errors.AdminShutdown("terminating connection due to administrator command")),
    "server-crashed": wrapped(errors.CrashShutdown("terminating connection because of crash of another process")),
    "server-starting-up": wrapped(errors.CannotConnectNow("the database system is starting up")),
    "too-many-connections": wrapped(errors.TooManyConnections("sorry, too many clients already")),
    "connection-failure": wrapped(errors.ConnectionFailure("connection failure")),
    "connection-lost-mid-query": wrapped(
        psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly")
    ),
    "connection-closed": wrapped(psycopg.OperationalError("the connection is closed")),
    "interface-connection-closed": wrapped(psycopg.InterfaceError("connection already closed"), db.InterfaceError),
    "sqlite-locked": wrapped(sqlite3.OperationalError("database is locked")),
    "sqlite-cannot-open": wrapped(sqlite3.OperationalError("unable to open database file")),
    "sqlite-disk-io": wrapped(sqlite3.OperationalError("disk I/O error")),
}

NOT_OUTAGES = {
    "unknown-table": wrapped(errors.UndefinedTable('relation "nosuch" does not exist'), db.ProgrammingError),
    "syntax-error": wrapped(errors.SyntaxError('syntax error at or near "selec"'), db.ProgrammingError),
    "unique-violation": wrapped(errors.UniqueViolation("duplicate key value"), db.IntegrityError),
    "division-by-zero": wrapped(errors.DivisionByZero("division by zero"), db.DataError),
    "statement-timeout": wrapped(errors.QueryCanceled("canceling statement due to statement timeout")),
    "cursor-closed": wrapped(psycopg.InterfaceError("the cursor is closed"), db.InterfaceError),
    "sqlite-no-such-table": wrapped(sqlite3.OperationalError("no such table: things")),
    "sqlite-syntax": wrapped(sqlite3.OperationalError('near "selec": syntax error')),
    "django-error-of-its-own": db.OperationalError("no driver error behind it"),
    "a-bug-while-handling-an-outage": raised_while_handling(
        wrapped(PoolTimeout("couldn't get a connection")), KeyError("missing")
    ),
    "not-the-database": ValueError("x"),
    "nothing": None,
}


@pytest.mark.parametrize("error", OUTAGES.values(), ids=OUTAGES.keys())
def test_database_outages_are_recognised(error):
    assert database.is_database_outage(error)


@pytest.mark.parametrize("error", NOT_OUTAGES.values(), ids=NOT_OUTAGES.keys())
def test_mistakes_and_other_errors_are_not_outages(error):
    assert not database.is_database_outage(error)


@pytest.fixture
def failing_page():
    yield outage_urls.FAILS_WITH
    outage_urls.FAILS_WITH.clear()


@pytest.mark.parametrize("error", [OUTAGES["server-shutting-down"], OUTAGES["sqlite-locked"]], ids=["pg", "sqlite"])
def test_a_page_answers_a_readable_503_naming_the_database(failing_page, error):
    failing_page.append(error)
    response = Client(raise_request_exception=False).get("/public/database/", headers={"accept": "text/html"})
    assert response.status_code == 503
    page = response.content.decode()
    assert "Temporarily unavailable" in page and "cannot reach its database" in page
    assert int(response["Retry-After"]) > 0
    assert "Traceback" not in page


def test_a_mistake_in_a_query_stays_a_500(failing_page):
    failing_page.append(NOT_OUTAGES["unknown-table"])
    response = Client(raise_request_exception=False).get("/public/database/")
    assert response.status_code == 500
    assert "Retry-After" not in response


def test_an_endpoint_for_programs_may_answer_the_outage_in_json(rf):
    from sso_client.pages import server_error

    try:
        raise OUTAGES["no-connection-from-the-pool"]
    except db.OperationalError:
        response = server_error(rf.post("/api/"), as_json=True)
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    assert int(response["Retry-After"]) > 0
    body = json.loads(response.content)
    assert body["error"] == "temporarily_unavailable" and "database" in body["error_description"]


@pytest.fixture
def public_health(settings):
    settings.SSO_CLIENT = {**settings.SSO_CLIENT, "PUBLIC_PATHS": ["/public/", "/-/health/"]}


@pytest.mark.django_db
def test_ready_while_the_database_answers(public_health):
    response = Client().get("/-/health/ready/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_names_the_database_when_it_does_not_answer(public_health, monkeypatch):
    def cursor():
        raise OUTAGES["no-connection-from-the-pool"]

    monkeypatch.setattr(connections["default"], "cursor", cursor)
    response = Client().get("/-/health/ready/")
    assert response.status_code == 503
    problem = response.json()["problems"]["database"]
    assert problem.startswith("Cannot reach the database (SQLite at ")
    assert "couldn't get a connection" in problem
    assert "redis" not in response.json()["problems"]
