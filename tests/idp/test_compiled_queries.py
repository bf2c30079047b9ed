"""provider.compiled_queries: a queryset compiled once gives what the queryset itself gives."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from provider.compiled_queries import CompiledQuery
from provider.models import LoginSession
from provider.selectors import account_for

pytestmark = pytest.mark.django_db

BY_SID = CompiledQuery(
    LoginSession, lambda sid: LoginSession.objects.select_related("user__account").filter(sid=sid)[:1], "\x01sid"
)


@pytest.fixture
def sessions():
    people = [get_user_model().objects.create_user(name, email=f"{name}@example.com") for name in ("ann", "bob")]
    for person in people:
        account_for(person)
    now = timezone.now()
    return [
        LoginSession.objects.create(
            sid=f"sid-of-{person.username}",
            user=person,
            session_key="k",
            expires=now + timedelta(hours=1),
            auth_time=now,
            amr=["pwd", "otp"],
        )
        for person in people
    ]


def test_each_value_gets_its_own_row_with_its_related_objects(sessions, django_assert_num_queries):
    for expected in sessions:
        with django_assert_num_queries(1):  # the person and their account come with the row
            found = BY_SID.first(expected.sid)
            assert found.user.username == expected.user.username
            assert found.user.account.sub == expected.user.account.sub
        assert found.pk == expected.pk and found.amr == ["pwd", "otp"]  # a JSON field, converted
        assert found.auth_time == expected.auth_time and found.auth_time.tzinfo is not None
        queried = LoginSession.objects.select_related("user__account").get(sid=expected.sid)
        assert {f.attname: getattr(found, f.attname) for f in LoginSession._meta.concrete_fields} == {
            f.attname: getattr(queried, f.attname) for f in LoginSession._meta.concrete_fields
        }


def test_no_row_is_none(sessions):
    assert BY_SID.first("no-such-sid") is None


def test_a_shape_whose_value_does_not_reach_the_sql_is_refused():
    # lower() turns the value into another parameter: swapping it in would run the wrong query.
    broken = CompiledQuery(LoginSession, lambda sid: LoginSession.objects.filter(sid__iexact=sid.upper())[:1], "\x01x")
    with pytest.raises(ValueError, match="placeholder"):
        broken.first("anything")
