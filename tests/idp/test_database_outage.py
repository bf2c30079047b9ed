"""The IdP with its database unreachable: a readable 503 with Retry-After, never a 500; JSON at the
endpoints that answer programs (as their other errors are), a page everywhere else; and
/-/health/ready/ naming the database. A mistake in a query stays a 500."""

from __future__ import annotations

import json

import psycopg
import pytest
from django import db
from django.contrib.auth import get_user_model
from django.db import connections
from django.test import Client
from psycopg import errors
from psycopg_pool import PoolTimeout

from provider.authorize import AuthorizationView
from provider.token_endpoints import TokenView

pytestmark = pytest.mark.django_db


def wrapped(cause: BaseException, django_class: type[db.Error] = db.OperationalError) -> db.Error:
    """What a query raises: Django's error of the same name, caused by the driver's."""
    try:
        raise django_class(*cause.args) from cause
    except django_class as error:
        return error


def lost_connection() -> db.Error:
    return wrapped(errors.AdminShutdown("terminating connection due to administrator command"))


def no_connection() -> db.Error:
    return wrapped(PoolTimeout("couldn't get a connection after 5.00 sec"))


def raising(error: BaseException):
    def view(*args, **kwargs):
        raise error

    return view


@pytest.fixture
def browser() -> Client:
    return Client(raise_request_exception=False)


def test_the_token_endpoint_answers_a_json_503(browser, monkeypatch):
    monkeypatch.setattr(TokenView, "answer", raising(no_connection()))
    response = browser.post("/o/token/", {"grant_type": "authorization_code", "code": "c"})
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    assert int(response["Retry-After"]) > 0
    body = json.loads(response.content)
    assert body["error"] == "temporarily_unavailable"
    assert "cannot reach its database" in body["error_description"]


def test_userinfo_answers_a_json_503(browser, monkeypatch):
    from oauth2_provider.views import UserInfoView

    monkeypatch.setattr(UserInfoView, "get", raising(wrapped(psycopg.OperationalError("the connection is closed"))))
    response = browser.get("/o/userinfo/", headers={"authorization": "Bearer some-token"})
    assert response.status_code == 503
    assert json.loads(response.content)["error"] == "temporarily_unavailable"


def test_the_authorization_page_answers_a_readable_503_page(browser, monkeypatch):
    """A browser's page under /o/ (authorize): a page, not JSON."""
    monkeypatch.setattr(AuthorizationView, "get", raising(lost_connection()))
    response = browser.get("/o/authorize/?client_id=x", headers={"accept": "text/html"})
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "Temporarily unavailable" in page and "cannot reach its database" in page
    assert "Identity provider" in page, "in the IdP's own look"
    assert int(response["Retry-After"]) > 0


def test_the_account_page_answers_a_readable_503_page(browser, monkeypatch):
    person = get_user_model().objects.create_user("outage-person", password="not-used-here")
    browser.force_login(person)
    monkeypatch.setattr("provider.views.account_for", raising(lost_connection()))
    response = browser.get("/", headers={"accept": "text/html"})
    assert response.status_code == 503
    assert "cannot reach its database" in response.content.decode()


def test_a_mistake_in_a_query_stays_a_500(browser, monkeypatch):
    mistake = wrapped(errors.UndefinedColumn('column "nosuch" does not exist'), db.ProgrammingError)
    monkeypatch.setattr(TokenView, "answer", raising(mistake))
    response = browser.post("/o/token/", {"grant_type": "authorization_code", "code": "c"})
    assert response.status_code == 500
    assert "Retry-After" not in response


def test_ready_names_the_database_when_it_does_not_answer(browser, monkeypatch):
    def cursor():
        raise no_connection()

    monkeypatch.setattr(connections["default"], "cursor", cursor)
    response = browser.get("/-/health/ready/")
    assert response.status_code == 503
    problem = response.json()["problems"]["database"]
    assert problem.startswith("Cannot reach the database (") and "couldn't get a connection" in problem
