"""Airflow for the DAG tests: a throw-away AIRFLOW_HOME with an SQLite DB, the repo's dags/ and
plugins/, set before anything imports airflow (its settings are read at import)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_HOME = Path(tempfile.mkdtemp(prefix="pixtag-airflow-"))
os.environ.update({
    "AIRFLOW_HOME": str(_HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
    "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME / 'airflow.db'}",
    "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
})


@pytest.fixture(scope="session")
def airflow_db() -> Iterator[Path]:
    """A migrated, empty Airflow metadata DB (what `dag.test()` needs)."""
    from airflow.utils import db

    db.resetdb()
    yield _HOME


@pytest.fixture(scope="session")
def dagbag() -> object:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))
