"""compose.yaml, .env.example and the Dockerfile read as Docker Compose and Docker would, for test_compose.

No container engine runs here, so the tests take each service apart instead: `compose_spec` (the
Rust `compose_spec` crate, which refuses unknown keys and wrong types) parses the file, the
functions below do what Compose then does with it (`.env` values, `${VAR}` interpolation, a
service's environment), and `Service` says how to run its command and health check as processes
of this machine.
"""

from __future__ import annotations

import ast
import fnmatch
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


def load_compose(path: Path = COMPOSE_FILE) -> dict:
    """The file as the Compose specification reads it (YAML merge keys applied), validated."""
    from compose_spec import PyOptions

    parsed = PyOptions(apply_merge=True).from_yaml(path.read_text())
    parsed.validate()
    return parsed.to_dict()


# --- .env files -----------------------------------------------------------------------------------
_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$")
_LISTED = re.compile(r"^\s*#?\s*(?:export\s+)?([A-Z_][A-Z0-9_]*)=", re.MULTILINE)


def read_env_file(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    """KEY=VALUE lines as Compose reads a .env file: comments skipped, quotes removed."""
    values = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _ASSIGNMENT.match(line)
        assert match, f"{path.name}: not a KEY=VALUE line: {line!r}"
        name, value = match.group(1), match.group(2).strip()
        if value[:1] in {"'", '"'} and value.endswith(value[0]) and len(value) >= 2:
            value = value[1:-1]
        else:
            value = re.split(r"\s+#", value, maxsplit=1)[0].strip()
        values[name] = value
    return values


def listed_in_env_file(path: Path = ENV_EXAMPLE) -> set[str]:
    """Every variable the file names, set or shown commented out (`# NAME=default`)."""
    return set(_LISTED.findall(path.read_text()))


# --- interpolation --------------------------------------------------------------------------------
_REFERENCE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<operator>:?[-?+])(?P<argument>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariable(ValueError):
    pass


def interpolate(text: str, env: dict[str, str]) -> str:
    """`${VAR}`, `$VAR`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`,
    `${VAR:+alternative}` and `$$` (a literal `$`), as the Compose specification defines them."""

    def replace(match: re.Match) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["bare"]
        value = env.get(name)
        operator, argument = match["operator"], match["argument"] or ""
        unset_or_empty = not value if operator and operator.startswith(":") else value is None
        if operator in {":-", "-"}:
            return argument if unset_or_empty else value
        if operator in {":?", "?"}:
            if unset_or_empty:
                raise MissingVariable(f"{name}: {argument}")
            return value
        if operator in {":+", "+"}:
            return "" if unset_or_empty else argument
        return value or ""

    return _REFERENCE.sub(replace, text)


def referenced_variables(text: str) -> set[str]:
    """The variables `${...}` and `$VAR` references in `text` name (not `$$`-escaped ones)."""
    return {match["braced"] or match["bare"] for match in _REFERENCE.finditer(text) if not match["escaped"]}


def service_environment(service: dict, env: dict[str, str]) -> dict[str, str]:
    """The container's variables from the service's `environment`: a name without a value is
    passed from the project's environment (.env) when set there, and left out otherwise."""
    declared = service.get("environment") or {}
    if isinstance(declared, list):
        declared = dict(item.split("=", 1) if "=" in item else (item, None) for item in declared)
    result = {}
    for name, value in declared.items():
        if value is None:
            if name in env:
                result[name] = env[name]
        else:
            result[name] = interpolate(str(value), env)
    return result


def declared_environment(service: dict) -> dict[str, str | None]:
    declared = service.get("environment") or {}
    if isinstance(declared, list):
        declared = dict(item.split("=", 1) if "=" in item else (item, None) for item in declared)
    return declared


def command_argv(command: list[str] | str) -> list[str]:
    """A service's `command` (or a health check's `CMD`) as the argument vector it runs."""
    return list(command) if isinstance(command, list) else shlex.split(command)


def healthcheck_argv(test: list[str] | str) -> list[str]:
    """A `healthcheck.test` as Docker runs it: `CMD` directly, `CMD-SHELL` (or a string) through sh."""
    if isinstance(test, str):
        return ["/bin/sh", "-c", test]
    kind, *rest = test
    if kind == "CMD":
        return rest
    if kind == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(rest)]
    raise AssertionError(f"healthcheck test {test!r} runs nothing")


# --- what the product's code reads ----------------------------------------------------------------
_READERS = {"env_flag", "local_default", "getenv"}


def variables_read(paths: list[Path]) -> dict[str, set[str]]:
    """Environment variables the Python files under `paths` read, each with the files that read it.

    Found in the syntax tree, not by text, so that an example in a docstring does not count:
    `os.environ.get("X")`, `os.environ["X"]`, `os.getenv("X")`, `env_flag("X", …)`,
    `local_default("X", …)`.
    """
    found: dict[str, set[str]] = {}
    files: list[Path] = []
    for root in paths:
        files += [root] if root.is_file() else sorted(root.rglob("*.py"))
    for file in files:
        if "migrations" in file.parts:
            continue
        for node in ast.walk(ast.parse(file.read_text(), filename=str(file))):
            name = _read_variable(node)
            if name:
                found.setdefault(name, set()).add(str(file.relative_to(ROOT)))
    return found


def _read_variable(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
        first = node.args[0].value
        function = node.func
        if not isinstance(first, str):
            return None
        if isinstance(function, ast.Name) and function.id in _READERS:
            return first
        if isinstance(function, ast.Attribute) and function.attr in {"get", "getenv"}:
            owner = ast.unparse(function.value)
            if owner in {"os.environ", "os", "environ"}:
                return first
    if isinstance(node, ast.Subscript) and ast.unparse(node.value) in {"os.environ", "environ"}:
        key = node.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            return key.value
    return None


# --- Dockerfile -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined and comments dropped."""
    instructions, pending = [], ""
    for line in path.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if pending and line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, arguments = full.partition(" ")
        instructions.append(Instruction(keyword.upper(), " ".join(arguments.split())))
    return instructions


def dockerignore_excludes(relative: str, path: Path = DOCKERIGNORE) -> bool:
    """Whether .dockerignore leaves `relative` (or a folder holding it) out of the build context."""
    patterns = [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    parts = Path(relative).parts
    candidates = ["/".join(parts[: index + 1]) for index in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern.lstrip("!").rstrip("/")
        if any(_dockerignore_match(body, candidate) for candidate in candidates):
            excluded = not negated
    return excluded


def _dockerignore_match(pattern: str, candidate: str) -> bool:
    if pattern.startswith("**/"):
        tail = pattern[3:]
        return any(fnmatch.fnmatchcase(part, tail) for part in candidate.split("/")) or fnmatch.fnmatchcase(
            candidate, tail
        )
    return fnmatch.fnmatchcase(candidate, pattern)
