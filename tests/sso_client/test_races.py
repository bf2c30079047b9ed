"""Requests of one browser that overlap (issue 12): nothing one of them saves undoes another's work.

1. A page that writes the session while another request of the same session refreshes the
   token must not save the older token pair back: the next refresh would replay a spent
   refresh token, the IdP would revoke the whole family, and the person would be signed out.
2. Two tabs that start a sign-in at once must both be able to complete it.

Both are played here with real requests (Django's test client) on threads, held at the moment
that matters, against the code paths and the cache the other unit tests use.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from unittest import mock

import pytest
from authlib.integrations.base_client import OAuthError
from django.test import Client

from sso_client.client import IdentityProviderApp
from sso_client.sessions import SessionStore
from tests.sso_client.conftest import make_id_token
from tests.sso_client.test_callback import begin, finish, token_response
from tests.sso_client.urls import WHILE_WRITING

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("idp_in_cache")]


class RotatingIdp:
    """The IdP's side of refreshing: each refresh token works once; one used again revokes them all."""

    def __init__(self) -> None:
        self.issued = 0
        self.valid: str | None = "refresh-0"
        self.spent: set[str] = set()
        self.replays = 0
        self.lock = threading.Lock()

    def refresh(self, *, grant_type: str, refresh_token: str, **kwargs) -> dict:
        assert grant_type == "refresh_token"
        with self.lock:
            if refresh_token in self.spent:
                self.replays += 1
                self.valid = None  # the whole family is revoked
            if refresh_token != self.valid:
                raise OAuthError(error="invalid_grant")
            self.spent.add(refresh_token)
            self.issued += 1
            self.valid = f"refresh-{self.issued}"
            return {
                "access_token": f"access-{self.issued}",
                "refresh_token": self.valid,
                "token_type": "Bearer",
                "expires_in": 300,
                "expires_at": int(time.time()) + 300,
            }


def run_at_once(*jobs: Callable[[], object], names: tuple[str, ...] = ()) -> list[object]:
    """Run `jobs` on threads of their own; their results, in order (an exception is raised here)."""
    results: list[object] = [None] * len(jobs)

    def run(position: int) -> None:
        try:
            results[position] = jobs[position]()
        except BaseException as error:  # handed to the test's thread below
            results[position] = error

    threads = [
        threading.Thread(target=run, args=(n,), name=names[n] if names else None, daemon=True) for n in range(len(jobs))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
        assert not thread.is_alive(), "a request never finished"
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


def same_browser(client: Client) -> Client:
    """Another tab of the browser `client` is: a client of its own with the same cookies."""
    tab = Client()
    for name, morsel in client.cookies.items():
        tab.cookies[name] = morsel.value
    return tab


# --- defect 1: tokens saved back stale -------------------------------------------------------------
def write_spanning_a_refresh(client: Client, signing_key, settings, held: tuple[threading.Event, threading.Event]):
    """Sign in, then: a page reads the session, a refresh happens, the page writes the session;
    then the next refresh. The person must stay signed in, and no spent refresh token be sent."""
    read, go = held
    idp = RotatingIdp()
    request = begin(client)
    first = {**token_response(make_id_token(signing_key, nonce=request["nonce"])), "refresh_token": "refresh-0"}
    assert finish(client, request, first)[0].status_code == 302

    with mock.patch.object(IdentityProviderApp, "fetch_access_token", side_effect=idp.refresh):
        tab = same_browser(client)

        def write_the_session():
            return tab.get("/remember/?note=draft")

        def refresh_meanwhile():
            assert read.wait(timeout=10), "the writing page never read the session"
            # From now on every access token is due: this page view refreshes (refresh-0 is spent)...
            settings.SSO_CLIENT = {**settings.SSO_CLIENT, "REFRESH_MARGIN_SECONDS": 3600}
            answer = client.get("/no-user/")
            go.set()  # ...and only then does the page that read the session before it write it
            return answer

        written, refreshed = run_at_once(write_the_session, refresh_meanwhile)
        assert written.status_code == 200 and refreshed.status_code == 200
        assert idp.issued == 1

        # The next refresh must use the refresh token the IdP gave last, not the spent one.
        assert client.get("/no-user/").status_code == 200, "the person was signed out"
    assert idp.replays == 0, "a spent refresh token was sent again"
    assert idp.issued == 2
    assert client.session["remembered"] == "draft", "and the page's own write was kept"


def test_a_session_write_that_spans_a_refresh_does_not_bring_the_spent_refresh_token_back(
    client, signing_key, settings, held_while_writing
):
    write_spanning_a_refresh(client, signing_key, settings, held_while_writing)


@pytest.mark.django_db(transaction=True)  # a tab signed out looks its user up, on its own thread
def test_many_session_writes_racing_refreshes_never_sign_the_person_out(client, signing_key, settings):
    WHILE_WRITING.append(lambda: time.sleep(0.005))  # a page takes its time between reading and writing
    idp = RotatingIdp()
    request = begin(client)
    first = {**token_response(make_id_token(signing_key, nonce=request["nonce"])), "refresh_token": "refresh-0"}
    assert finish(client, request, first)[0].status_code == 302
    settings.SSO_CLIENT = {**settings.SSO_CLIENT, "REFRESH_MARGIN_SECONDS": 3600}  # every page view refreshes
    tabs = [same_browser(client) for _ in range(6)]

    def tab_job(tab: Client, n: int) -> Callable[[], list[int]]:
        def run() -> list[int]:
            path = "/remember/?note={}" if n % 2 else "/no-user/?n={}"
            return [tab.get(path.format(round_)).status_code for round_ in range(15)]

        return run

    try:
        with mock.patch.object(IdentityProviderApp, "fetch_access_token", side_effect=idp.refresh):
            answers = run_at_once(*(tab_job(tab, n) for n, tab in enumerate(tabs)))
            assert client.get("/no-user/").status_code == 200
    finally:
        WHILE_WRITING.clear()
    assert all(status == 200 for statuses in answers for status in statuses), answers
    assert idp.replays == 0
    assert idp.issued >= 2


# --- defect 2: two tabs starting a sign-in at once ------------------------------------------------
@contextlib.contextmanager
def all_started_before_any_saves(tabs: int):
    """Hold each tab's first session save (threads named "tab-…") until every tab has reached its
    own: they all read the session and started their sign-in before any of them saves."""
    saving = threading.Barrier(tabs, timeout=5)
    saved_once = threading.local()
    save = SessionStore.save

    def save_once_all_started(self, must_create=False):
        if threading.current_thread().name.startswith("tab-") and not getattr(saved_once, "done", False):
            saved_once.done = True
            with contextlib.suppress(threading.BrokenBarrierError):
                saving.wait()
        return save(self, must_create)

    with mock.patch.object(SessionStore, "save", save_once_all_started):
        yield
    assert not saving.broken, "every tab saved the session"


def start_in_tabs(client: Client, pages: list[str]) -> list[dict]:
    """Start a sign-in in a tab of `client`'s browser per page, all at once; their authorization requests."""
    tabs = [same_browser(client) for _ in pages]
    with all_started_before_any_saves(len(pages)):
        return run_at_once(
            *(lambda tab=tab, page=page: begin(tab, page) for tab, page in zip(tabs, pages, strict=True)),
            names=tuple(f"tab-{n}" for n in range(len(pages))),
        )


def complete(client: Client, signing_key, request: dict):
    id_token = make_id_token(signing_key, nonce=request["nonce"], sub="one-person")
    return finish(client, request, token_response(id_token))[0]


def test_two_sign_ins_started_at_once_both_complete(client, signing_key):
    begin(client, "/earlier/")  # the browser has a session already (an earlier visit)
    started = start_in_tabs(client, ["/first-tab/", "/second-tab/"])
    for request, page in zip(started, ("/first-tab/", "/second-tab/"), strict=True):
        response = complete(client, signing_key, request)
        assert response.status_code == 302, response.content.decode()
        assert response["Location"] == page
    assert client.get("/").content == b"hello alice"


def test_four_tabs_started_at_once_all_complete_in_any_order(client, signing_key):
    begin(client, "/earlier/")  # with these four, the five pending sign-ins one browser may keep
    started = start_in_tabs(client, [f"/tab/{n}/" for n in range(4)])
    for n in (2, 0, 3, 1):
        response = complete(client, signing_key, started[n])
        assert response.status_code == 302 and response["Location"] == f"/tab/{n}/", response.content.decode()
