"""A bad database URL, or a database that does not answer, stops start-up with one readable line.

Each server (the IdP and both sites) is started as production starts it, under gunicorn, with a
working Redis: it must exit with code 3 and one line on stderr naming the variable to fix, never
a traceback. Management commands say the same for a malformed URL.
"""

from __future__ import annotations

import os

import pytest

from devstack.processes import free_port
from devstack.stack import IDP, SITE_A, SITE_B, start_and_wait_for_exit

VARIABLES = {"idp": "DATABASE_URL", "site_a": "SITE_A_DATABASE_URL", "site_b": "SITE_B_DATABASE_URL"}
SITES = [IDP, SITE_A, SITE_B]

MALFORMED = {
    "not a URL": "not-a-database-url",
    "unknown scheme": "http://db.example.com/idp",
    "port not a number": "postgres://user:secret@db.example.com:port/idp",
    "no database name": "postgres://user:secret@db.example.com:5432",
}


@pytest.fixture
def server_env(production_env, tmp_path) -> dict[str, str]:
    """Production settings with a working Redis, and SQLite files of their own for every site."""
    return {
        **os.environ,
        **production_env,
        "SSO_LOCAL_DIR": str(tmp_path),
        **{variable: f"sqlite:///{tmp_path / name}.sqlite3" for name, variable in VARIABLES.items()},
    }


def assert_one_line_naming(variable: str, output: str, *, secret: str | None = None, prefix: str = "error: ") -> None:
    assert "Traceback" not in output, output
    naming = [line for line in output.splitlines() if variable in line]
    assert len(naming) == 1, output
    assert naming[0].startswith(prefix), output
    if secret:
        assert secret not in output, "the database password is never printed"


@pytest.mark.parametrize("site", SITES, ids=lambda site: site.name)
@pytest.mark.parametrize("url", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_database_url_stops_the_server_with_one_line(site, url, server_env, tmp_path):
    variable = VARIABLES[site.name]
    code, output = start_and_wait_for_exit(site, {**server_env, variable: url}, tmp_path)
    assert code == 3, output
    assert_one_line_naming(variable, output, secret="secret")


@pytest.mark.parametrize("site", SITES, ids=lambda site: site.name)
def test_a_malformed_database_url_stops_management_commands_with_one_line(site, server_env):
    variable = VARIABLES[site.name]
    result = site.manage("migrate", env={**server_env, variable: MALFORMED["port not a number"]})
    assert result.returncode != 0
    assert_one_line_naming(variable, result.stderr, secret="secret")


@pytest.mark.parametrize("site", SITES, ids=lambda site: site.name)
def test_an_unreachable_postgresql_stops_the_server_with_one_line(site, server_env, tmp_path):
    variable = VARIABLES[site.name]
    url = f"postgres://sso:secret@127.0.0.1:{free_port()}/sso"  # nothing listens there
    code, output = start_and_wait_for_exit(site, {**server_env, variable: url}, tmp_path)
    assert code == 3, output
    assert_one_line_naming(variable, output, secret="secret")
    assert "Cannot reach the database" in output


@pytest.mark.parametrize("site", SITES, ids=lambda site: site.name)
def test_an_unusable_sqlite_file_stops_the_server_with_one_line(site, server_env, tmp_path):
    variable = VARIABLES[site.name]
    url = f"sqlite:///{tmp_path / 'no-such-folder' / 'db.sqlite3'}"
    code, output = start_and_wait_for_exit(site, {**server_env, variable: url}, tmp_path)
    assert code == 3, output
    assert_one_line_naming(variable, output)


@pytest.mark.parametrize("site", SITES, ids=lambda site: site.name)
def test_migrate_names_an_unreachable_database_url(site, server_env):
    """What compose's `migrate` service meets first: the check before migrating, not a traceback."""
    variable = VARIABLES[site.name]
    url = f"postgres://sso:secret@127.0.0.1:{free_port()}/sso"
    result = site.manage("migrate", "--no-input", env={**server_env, variable: url})
    assert result.returncode != 0
    assert_one_line_naming(variable, result.stderr, secret="secret", prefix="?: (")  # a system check's error
    assert "Cannot reach the database" in result.stderr
