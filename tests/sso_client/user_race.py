"""Many callbacks creating local users at once, on a real database: run by test_user_race.py.

Run in a process of its own (`python -m tests.sso_client.user_race SCENARIO THREADS ROUNDS`, the
database URL in RACE_DATABASE_URL), because the unit tests' own database is SQLite in memory:
here the database is configured as a site's is (sso_client.database), a file or PostgreSQL, and
every thread has its own connection, as gunicorn's threads do. Each round, the threads wait at a
barrier and then do what a sign-in callback writes: find or create the local user from the
claims, then stamp its last login. Prints one JSON line: what each thread got, and the rows made.

Scenarios: `one-person` (every thread signs in the same new person), `one-name` (two new people
who both want the same username, half the threads each).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import traceback

ISSUER = "https://idp.example/o"


def configure(url: str, threads: int) -> None:
    import django
    from django.conf import settings

    from sso_client.database import database_config
    from tests.sso_client import settings as unit_settings

    base = {name: getattr(unit_settings, name) for name in dir(unit_settings) if name.isupper()}
    base["DATABASES"] = {"default": database_config(url, variable="RACE_DATABASE_URL", threads=str(threads))}
    settings.configure(**base)
    django.setup()


def race_round(people: list[str], wanted: str, threads: int, errors: list[str]) -> dict:
    """`threads` callbacks at once, of `people` in turn, each wanting the username `wanted`."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import update_last_login
    from django.db import connections

    from sso_client.models import Identity
    from sso_client.users import user_from_claims

    barrier = threading.Barrier(threads)
    got: dict[int, tuple[str, int]] = {}

    def sign_in(index: int, subject: str) -> None:
        try:
            barrier.wait(timeout=30)
            user = user_from_claims(issuer=ISSUER, claims={"sub": subject, "preferred_username": wanted})
            update_last_login(None, user)  # what django.contrib.auth.login writes next
            got[index] = (subject, user.pk)
        except Exception as error:  # every failure is reported, none ends the round early
            errors.append(f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=4)}")
        finally:
            connections.close_all()  # this thread's connections (back to the pool on PostgreSQL)

    workers = [threading.Thread(target=sign_in, args=(index, people[index % len(people)])) for index in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    identities = Identity.objects.filter(subject__in=people)
    return {
        "answered": len(got),
        "users_of": {subject: sorted({pk for s, pk in got.values() if s == subject}) for subject in people},
        "identities": {identity.subject: identity.user_id for identity in identities},
        "usernames": sorted(
            get_user_model().objects.filter(sso_identity__subject__in=people).values_list("username", flat=True)
        ),
    }


def run(scenario: str, threads: int, rounds: int) -> dict:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connections

    call_command("migrate", verbosity=0)
    connections.close_all()
    errors: list[str] = []
    results = []
    for number in range(rounds):
        if scenario == "one-person":
            people = [f"one-person-{number}"]
        else:
            people = [f"one-name-{number}-a", f"one-name-{number}-b"]
        results.append(race_round(people, f"sam{number}", threads, errors))
    connections.close_all()
    return {"errors": errors, "rounds": results, "users": get_user_model().objects.count()}


def main() -> None:
    scenario, threads, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    configure(os.environ["RACE_DATABASE_URL"], threads)
    print(json.dumps(run(scenario, threads, rounds)))


if __name__ == "__main__":
    main()
