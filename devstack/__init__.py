"""Tooling that starts the whole product on one machine: `make run` and the end-to-end tests.

Both use the same pieces, so what the tests start is what a developer runs.
"""
