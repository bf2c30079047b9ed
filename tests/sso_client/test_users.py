"""Local users are keyed by the IdP's subject, never by username."""

import pytest
from django.contrib.auth import get_user_model

from sso_client.users import user_from_claims

pytestmark = pytest.mark.django_db
ISSUER = "https://idp.example/o"


def test_the_same_subject_is_the_same_user_even_after_a_rename():
    first = user_from_claims(issuer=ISSUER, claims={"sub": "s1", "preferred_username": "alice", "email": "a@x"})
    again = user_from_claims(issuer=ISSUER, claims={"sub": "s1", "preferred_username": "alice2", "email": "b@x"})
    assert again.pk == first.pk
    assert again.email == "b@x"


def test_another_subject_with_a_taken_username_gets_its_own_user():
    alice = user_from_claims(issuer=ISSUER, claims={"sub": "s1", "preferred_username": "alice"})
    impostor = user_from_claims(issuer=ISSUER, claims={"sub": "s2", "preferred_username": "alice"})
    assert impostor.pk != alice.pk
    assert impostor.username == "alice-2"


def test_the_same_subject_at_another_issuer_is_another_person():
    here = user_from_claims(issuer=ISSUER, claims={"sub": "s1", "preferred_username": "alice"})
    there = user_from_claims(issuer="https://other.example", claims={"sub": "s1", "preferred_username": "alice"})
    assert here.pk != there.pk
    assert get_user_model().objects.count() == 2
