"""Build-time check of the pixtag Airflow image (the last step of docker/airflow.Dockerfile).

A broken image should fail ``docker-compose build``, not the first DAG run: this imports what
the services need, checks the data pixtag reads beside its package, loads NLTK's WordNet,
parses the DAG (without a database) and imports the plugin. Exit status 1 with one line per problem.

    python docker/check_image.py [--project DIR] [--skip-module NAME ...]
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

#: What the services import: the executor and its broker, both Postgres drivers (Airflow's
#: async engine uses asyncpg), pixtag's heavy stages.
MODULES = (
    "airflow.providers.celery.executors.celery_executor",
    "redis",
    "psycopg2",
    "asyncpg",
    "boto3",
    "mlflow",
    "torch",
    "timm",
    "great_expectations",
    "nltk",
    "pixtag.pipeline.flow",
)

#: Files the init and the tasks read from the project folder.
PROJECT_FILES = ("airflow/pools.json", "airflow/connections.json", "dags/pixtag_retrain.py",
                 "plugins/pixtag_plugin.py", "docker/init.py")


def check_modules(names: tuple[str, ...] | list[str]) -> list[str]:
    problems = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:  # any import failure is a broken image
            problems.append(f"cannot import {name}: {type(exc).__name__}: {exc}")
    return problems


def check_project(project: Path) -> list[str]:
    problems = [f"missing {project / rel}" for rel in PROJECT_FILES if not (project / rel).is_file()]
    from pixtag.data import validate
    suites = sorted(validate.SUITE_DIR.glob("*.json"))
    if not suites:
        problems.append(f"no expectation suites in {validate.SUITE_DIR} (package data, or expectations/)")
    return problems


def check_nltk() -> list[str]:
    from pixtag.tags import nlp
    try:
        nlp.wordnet().synsets("cat", pos="n")
        if "the" not in nlp.stopwords():
            return ["NLTK stopwords look wrong"]
    except Exception as exc:
        return [f"NLTK data: {exc}"]
    return []


def check_dag(project: Path) -> list[str]:
    """The DAG parses (no database needed) and the plugin imports."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(project / "dags"))
    if bag.import_errors:
        return [f"DAG import error in {path}: {err}" for path, err in bag.import_errors.items()]
    if "pixtag_retrain" not in bag.dag_ids:
        return [f"pixtag_retrain not found in {project / 'dags'}"]
    spec = importlib.util.spec_from_file_location("pixtag_plugin", project / "plugins" / "pixtag_plugin.py")
    try:
        assert spec and spec.loader
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    except Exception as exc:
        return [f"the plugin does not import: {type(exc).__name__}: {exc}"]
    return []


def isolated_airflow_home(project: Path) -> str:
    """Point Airflow at a throw-away home before anything imports it: no airflow.cfg (with
    generated secrets) or database is left in the image."""
    home = tempfile.mkdtemp(prefix="pixtag-check-")
    os.environ.update({"AIRFLOW_HOME": home, "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                       "AIRFLOW__CORE__DAGS_FOLDER": str(project / "dags"),
                       "AIRFLOW__CORE__PLUGINS_FOLDER": str(project / "plugins"),
                       "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db"})
    return home


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--skip-module", action="append", default=[], help="Do not import this module.")
    args = parser.parse_args(argv)
    home = isolated_airflow_home(args.project)
    try:
        problems = check_modules([m for m in MODULES if m not in args.skip_module])
        if not problems:
            problems = check_project(args.project) + check_nltk() + check_dag(args.project)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    for problem in problems:
        print(f"pixtag image check: {problem}", file=sys.stderr)
    if not problems:
        print("pixtag image check: ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
