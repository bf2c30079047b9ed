"""People's passwords: Argon2id with our parameters, older hashes upgraded at sign-in, and the
password validators wherever a password is set, the demo seeding included."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse

from idp_server import settings as served
from provider.hashers import PersonPasswordHasher
from provider.services import application_register, user_ensure

pytestmark = pytest.mark.django_db

ARGON2ID = "argon2$argon2id$v=19$m=19456,t=2,p=1$"
#: What PersonPasswordHasher stored before (64 MiB, 3 passes): re-hashed at the next sign-in.
PREVIOUS_ARGON2ID = "argon2$argon2id$v=19$m=65536,t=3,p=1$"


@pytest.fixture
def served_hashers(settings):
    """The hashers the IdP serves with (the other unit tests use a fast one)."""
    settings.PASSWORD_HASHERS = served.PASSWORD_HASHERS


def test_a_new_password_is_stored_with_argon2id_and_our_parameters(served_hashers):
    user = get_user_model().objects.create_user("erin", password="correct horse battery")
    assert user.password.startswith(ARGON2ID)
    assert user.check_password("correct horse battery")


def test_the_parameters_are_owasps_minimum_for_argon2id():
    hasher = PersonPasswordHasher()
    assert (hasher.memory_cost, hasher.time_cost, hasher.parallelism) == (19456, 2, 1)  # KiB, passes, lanes
    assert hasher.memory_cost >= 19 * 1024 and hasher.time_cost >= 2, "never below OWASP's minimum"


@pytest.mark.parametrize(
    "old_parameters",
    [
        {"memory_cost": 64 * 1024, "time_cost": 3, "parallelism": 1},  # this hasher's previous parameters
        {"memory_cost": 19 * 1024, "time_cost": 3, "parallelism": 1},
        {"memory_cost": 19 * 1024, "time_cost": 2, "parallelism": 4},
        {"memory_cost": 100 * 1024, "time_cost": 2, "parallelism": 8},  # Django's own Argon2 defaults
    ],
)
def test_an_argon2_hash_with_other_parameters_must_be_updated(old_parameters):
    old_hasher = type("OldHasher", (PersonPasswordHasher,), old_parameters)()
    encoded = old_hasher.encode("a password", old_hasher.salt())
    assert PersonPasswordHasher().must_update(encoded)
    assert not PersonPasswordHasher().must_update(PersonPasswordHasher().encode("a password", "s" * 22))


def test_a_previous_argon2id_hash_is_upgraded_at_sign_in(client, served_hashers):
    old_hasher = type("PreviousHasher", (PersonPasswordHasher,), {"memory_cost": 64 * 1024, "time_cost": 3})()
    user = get_user_model().objects.create_user("gina")
    user.password = old_hasher.encode("an older password", old_hasher.salt())
    user.save()
    assert user.password.startswith(PREVIOUS_ARGON2ID)
    response = client.post(reverse("login"), {"username": "gina", "password": "an older password"})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.password.startswith(ARGON2ID)
    assert user.check_password("an older password")


def test_a_pbkdf2_hash_is_upgraded_to_argon2id_at_sign_in(client, served_hashers):
    user = get_user_model().objects.create_user("frank")
    user.password = make_password("an old password", hasher="pbkdf2_sha256")
    user.save()
    response = client.post(reverse("login"), {"username": "frank", "password": "an old password"})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.password.startswith(ARGON2ID)
    assert user.check_password("an old password")


def test_client_secrets_keep_their_fast_hasher(served_hashers):
    assert served.PASSWORD_HASHERS[0] == "provider.hashers.PersonPasswordHasher"
    registered = application_register(name="Reports", redirect_uris=["https://reports.example.com/cb/"])
    assert registered.application.client_secret.startswith("client_secret_sha256$")


def test_seeding_refuses_a_weak_password_and_names_the_variable(settings):
    settings.DEMO_PASSWORD = "alice"
    with pytest.raises(CommandError) as refused:
        call_command("seed_demo", stdout=StringIO())
    assert str(refused.value).startswith("DEMO_PASSWORD is too weak for user alice: ")
    assert "too short" in str(refused.value)
    assert not get_user_model().objects.filter(username="alice").exists()


def test_a_password_like_the_persons_name_is_refused():
    with pytest.raises(ValidationError, match="too similar"):
        user_ensure(username="grace", password="gracehopper", email="g@example.com", full_name="Grace Hopper")


@pytest.mark.parametrize(
    ("username", "password", "full_name"),
    [("alice", "alice-demo-password", "Alice Liddell"), ("admin", "admin-demo-password", "Site Administrator")],
)
def test_the_local_default_demo_passwords_pass(username, password, full_name):
    assert user_ensure(username=username, password=password, email=f"{username}@example.com", full_name=full_name)
