"""Callbacks of one person racing each other create one local user, and every one of them signs in.

A person opening the site in many tabs (or many browsers) at once makes as many callbacks, each
finding no local user yet. On a real database (a SQLite file configured as the sites' are, and
PostgreSQL when the tests have one), threads race through what a callback writes: every thread
ends with the same user, none fails ("database is locked", a unique constraint), and two new
people wanting one username get a user each.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.postgres_server import databases_for_tests

ROOT = Path(__file__).resolve().parents[2]
THREADS = 16
ROUNDS = 4


@pytest.fixture(scope="module")
def postgresql(tmp_path_factory) -> Iterator[object]:
    """PostgreSQL databases (TEST_DATABASE_URL, else a private server), or a skip without one."""
    with databases_for_tests(tmp_path_factory.mktemp("race-databases")) as databases:
        if databases.kind != "postgresql":
            pytest.skip(f"no PostgreSQL: {databases.description}")
        yield databases


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'site.sqlite3'}"
    return request.getfixturevalue("postgresql").new_database("user_race")


def race(database_url: str, scenario: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "tests.sso_client.user_race", scenario, str(THREADS), str(ROUNDS)],
        cwd=ROOT,
        env={**os.environ, "RACE_DATABASE_URL": database_url, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


def test_racing_callbacks_of_one_person_make_one_user_and_all_sign_in(database_url):
    outcome = race(database_url, "one-person")
    assert outcome["errors"] == [], outcome["errors"][0]
    for number, round_ in enumerate(outcome["rounds"]):
        assert round_["answered"] == THREADS
        [(subject, pks)] = round_["users_of"].items()
        assert len(pks) == 1, f"every callback ends with the same user: {pks}"
        assert round_["identities"] == {subject: pks[0]}
        assert round_["usernames"] == [f"sam{number}"]
    assert outcome["users"] == ROUNDS


def test_two_new_people_wanting_one_username_at_once_get_a_user_each(database_url):
    outcome = race(database_url, "one-name")
    assert outcome["errors"] == [], outcome["errors"][0]
    for number, round_ in enumerate(outcome["rounds"]):
        assert round_["answered"] == THREADS
        assert all(len(pks) == 1 for pks in round_["users_of"].values()), round_["users_of"]
        assert round_["identities"] == {subject: pks[0] for subject, pks in round_["users_of"].items()}
        assert round_["usernames"] == [f"sam{number}", f"sam{number}-2"]
    assert outcome["users"] == 2 * ROUNDS
