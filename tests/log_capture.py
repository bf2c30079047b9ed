"""A fixture for the logging tests of the IdP and of sso_client: the JSON lines logged during a test."""

from __future__ import annotations

import io
import json
import logging

import pytest
import structlog

from sso_client.logs import SHARED_PROCESSORS, renderers

JSON_FORMATTER = structlog.stdlib.ProcessorFormatter(foreign_pre_chain=SHARED_PROCESSORS, processors=renderers("json"))


@pytest.fixture
def log_lines():
    """The JSON lines logged during the test, formatted as they are written (with the context then bound)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSON_FORMATTER)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
