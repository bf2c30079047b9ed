"""Reading what `manage.py rotate_signing_key` prints, as an operator would follow it.

Used by the IdP's unit tests and the end-to-end test, which restarts the IdP with each step's values.
"""

from __future__ import annotations

import shlex


def printed_steps(output: str) -> list[dict[str, str]]:
    """The variables each step of the printed procedure sets (lines `    NAME=value    # note`)."""
    steps: list[dict[str, str]] = []
    for line in output.splitlines():
        if line.startswith("Step "):
            steps.append({})
        elif steps and line.startswith("    ") and "=" in line.split("#", 1)[0]:
            [assignment] = shlex.split(line, comments=True)
            name, _, value = assignment.partition("=")
            steps[-1][name] = value
    return steps
