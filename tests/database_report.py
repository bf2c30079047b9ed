"""Which database a test run used, said in pytest's header (planned) and summary (what ran).

A conftest imports the two hooks and records what its database fixture started with `database_used`.
"""

from __future__ import annotations

from devstack.postgres_server import planned_database

_database_used: list[str] = []


def database_used(description: str) -> None:
    _database_used[:] = [description]


def pytest_report_header(config) -> str:
    return f"database: {planned_database()}"


def pytest_terminal_summary(terminalreporter) -> None:
    if _database_used:
        terminalreporter.write_line(f"database: {_database_used[0]}")
