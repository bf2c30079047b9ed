"""Fixtures of the back-channel logout tests: a real redis-server for the retry queue (RQ), two
registered sites, people signed in at both, and a worker run in this process.

Nothing listens at the sites' back-channel URIs: a test that lets a delivery through mocks
`provider.backchannel.post`, or checks that no HTTP request left at all.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.cache import SessionStore
from oauth2_provider.models import get_access_token_model, get_refresh_token_model
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from devstack.processes import free_port
from devstack.redis_server import RedisServer
from provider import backchannel
from provider.login_sessions import login_session_start, refresh_token_link
from provider.models import LoginSession
from provider.services import application_register

AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def retry_queue(redis_server, settings):
    """The IdP's retry queue on the real redis-server, empty at the start of the test."""
    settings.REDIS_URL = redis_server.url
    redis_server.client().flushall()
    return backchannel.queue()


@pytest.fixture
def sites():
    """Two registered sites with back-channel logout URIs where nothing listens."""
    return tuple(
        application_register(
            name=f"Site {name.upper()}",
            client_id=f"site-{name}",
            redirect_uris=[f"http://127.0.0.1:{free_port()}/sso/callback/"],
            backchannel_logout_uri=f"http://127.0.0.1:{free_port()}/sso/backchannel-logout/",
        ).application
        for name in ("a", "b")
    )


def signed_in(user) -> LoginSession:
    """A login session of `user` at the IdP, with its browser session (in the cache)."""
    session = SessionStore()
    session.create()
    login_session = login_session_start(session=session, user=user)
    session.save()
    return login_session


def token_for(login_session: LoginSession, application):
    """Tokens of `application` issued in `login_session`, as a code exchange leaves them."""
    access = AccessToken.objects.create(
        user=login_session.user,
        application=application,
        token=f"a-{time.monotonic_ns()}",
        expires="2999-01-01T00:00:00Z",
        scope="openid",
    )
    refresh = RefreshToken.objects.create(
        user=login_session.user, application=application, token=f"r-{time.monotonic_ns()}", access_token=access
    )
    refresh_token_link(sid=login_session.sid, refresh_token=refresh)
    return refresh


def people_signed_in_at(sites, count: int, *, prefix: str = "person") -> list:
    """`count` people, each with one login session in which both sites got tokens."""
    people = []
    for number in range(count):
        person = get_user_model().objects.create_user(f"{prefix}-{number}")
        login_session = signed_in(person)
        for site in sites:
            token_for(login_session, site)
        people.append(person)
    return people


def run_worker(queue) -> None:
    """The worker (`manage.py backchannel_worker`), in this process, until the queue is empty.

    Retries scheduled for later stay in their registry: a test wanting them sets intervals of 0.
    """
    SimpleWorker([queue], connection=queue.connection, serializer=JSONSerializer).work(
        burst=True, logging_level="WARNING"
    )
