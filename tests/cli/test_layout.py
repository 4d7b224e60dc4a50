"""The CLI sits on top: nothing below ``pixtag/cli/`` imports click or ``pixtag.cli``, pixtag
never imports the demo instance, and a light command stays light."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from pixtag.cli.app import COMMANDS, cli

PACKAGE = Path(__file__).resolve().parents[2] / "pixtag"


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_only_pixtag_cli_imports_click_or_the_cli() -> None:
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "cli" or rel.as_posix() == "__main__.py":  # the entry point calls the CLI
            continue
        bad = sorted(m for m in imported_modules(path)
                     if m.split(".")[0] == "click" or m == "pixtag.cli" or m.startswith("pixtag.cli."))
        if bad:
            offenders[rel.as_posix()] = bad
    assert offenders == {}


def test_pixtag_never_imports_the_demo_instance() -> None:
    offenders = {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")
                 if any(m.split(".")[0] == "pixtag_demo" for m in imported_modules(p))}
    assert offenders == set()
    assert "demo-instance" not in COMMANDS


def test_every_listed_command_lives_in_pixtag_cli_and_loads() -> None:
    assert all(target.startswith("pixtag.cli.") for target in COMMANDS.values())
    for name in COMMANDS:
        assert cli.get_command(None, name) is not None, name  # type: ignore[arg-type]


def test_normalize_imports_neither_torch_nor_mlflow() -> None:
    code = ("import sys, json, io, contextlib\nfrom pixtag.cli import main\nout = io.StringIO()\n"
            "with contextlib.redirect_stdout(out):\n    try:\n        main(['normalize', 'CatsOfPixelfed'])\n"
            "    except SystemExit as exc:\n        code = exc.code\n"
            "print(json.dumps({'code': code, 'out': out.getvalue(),"
            " 'heavy': sorted(m for m in ('torch', 'mlflow', 'timm') if m in sys.modules)}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result == {"code": 0, "out": "CatsOfPixelfed\tcat pixelfed\n", "heavy": []}


def test_every_name_a_command_imports_lazily_exists() -> None:
    """The commands import their domain functions when run: each of those names must exist."""
    import importlib

    missing = []
    for path in sorted((PACKAGE / "cli").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pixtag"):
                module = importlib.import_module(node.module)
                missing += [f"{path.name}: {node.module}.{a.name}" for a in node.names if not hasattr(module, a.name)]
    assert missing == []


def test_one_module_points_mlflow_somewhere() -> None:
    """Every command and task finds the registry through ``pixtag.model.tracking``; nothing else
    sets MLflow's tracking or registry URI, or builds a client on an address of its own."""
    calls = {"set_tracking_uri", "set_registry_uri", "MlflowClient"}
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel == "model/tracking.py":
            continue
        found = sorted({node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
                        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                        if isinstance(node, ast.Call) and (
                            (isinstance(node.func, ast.Attribute) and node.func.attr in calls)
                            or (isinstance(node.func, ast.Name) and node.func.id in calls))})
        if found:
            offenders[rel] = found
    assert offenders == {}


def test_every_package_of_the_checkout_is_in_the_wheel() -> None:
    """``pip install .`` ships the packages pyproject.toml lists: every folder of pixtag and
    pixtag_demo with an ``__init__.py`` must be one of them (a room left out fails at import)."""
    import tomllib

    root = PACKAGE.parent
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(root).parts)
             for top in ("pixtag", "pixtag_demo") for init in (root / top).rglob("__init__.py")}
    assert found - listed == set()
