"""pyproject.toml: pixtag's runtime dependencies as ranges the pins satisfy, extras for the
tests, and nothing pixtag imports left undeclared."""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def pins() -> tuple[dict[str, str], dict[str, str]]:
    """requirements.txt: (runtime pins, test-tool pins), split at ``# test and dev tools``."""
    lines = (REPO / "requirements.txt").read_text().splitlines()
    marker = lines.index("# test and dev tools")

    def parse(part: list[str]) -> dict[str, str]:
        reqs = [Requirement(line) for line in part if line and not line.startswith("#")]
        return {canonicalize_name(r.name): next(iter(r.specifier)).version for r in reqs}

    return parse(lines[:marker]), parse(lines[marker:])


def declared(group: list[str]) -> dict[str, Requirement]:
    return {canonicalize_name(r.name): r for r in map(Requirement, group)}


def test_every_runtime_pin_is_a_declared_dependency_whose_range_it_satisfies() -> None:
    runtime, tools = pins()
    deps = declared(PROJECT["dependencies"])
    assert set(deps) == set(runtime), set(deps) ^ set(runtime)
    for name, requirement in deps.items():
        assert requirement.specifier, f"{name}: a range, not a bare name"
        assert runtime[name] in requirement.specifier, f"{name}=={runtime[name]} is outside {requirement}"
    extras = PROJECT["optional-dependencies"]
    tests = declared(extras["dev"]) | declared(extras["browser"])
    assert set(tests) == set(tools)
    assert set(declared(extras["browser"])) == {"selenium"}
    for name, requirement in tests.items():
        assert tools[name] in requirement.specifier, f"{name}=={tools[name]} is outside {requirement}"


def test_everything_pixtag_imports_is_declared() -> None:
    imported: set[str] = set()
    for path in (REPO / "pixtag").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"pixtag", "__future__"}
    dists = packages_distributions()
    unknown = sorted(m for m in third_party if m not in dists)
    assert not unknown, f"imports no installed distribution provides: {unknown}"
    needed = {canonicalize_name(d) for m in third_party for d in dists[m]}
    deps = set(declared(PROJECT["dependencies"]))
    # A module may come from a distribution a declared one depends on (airflow's task SDK, ...).
    from importlib.metadata import requires

    closure, todo = set(), list(deps)
    while todo:
        name = todo.pop()
        if name in closure:
            continue
        closure.add(name)
        try:
            todo += [canonicalize_name(Requirement(r).name) for r in requires(name) or []
                     if "extra ==" not in r]
        except Exception:  # not installed here (an optional, platform-specific requirement)
            continue
    assert not needed - closure, f"imported but not declared: {sorted(needed - closure)}"
    direct = needed & deps
    assert {"mlflow", "great-expectations", "onnxruntime", "tenacity", "pydantic-settings"} <= direct
