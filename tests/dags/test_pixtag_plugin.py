"""The Airflow plugin's buttons: on pixtag's own DAG only."""

from __future__ import annotations

import importlib.util
from types import ModuleType

import pytest

from tests.dags.conftest import REPO


@pytest.fixture(scope="module")
def plugin() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pixtag_plugin", REPO / "plugins" / "pixtag_plugin.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def key(dag_id: str, task_id: str):
    from airflow.models.taskinstancekey import TaskInstanceKey

    return TaskInstanceKey(dag_id=dag_id, task_id=task_id, run_id="manual__1", try_number=1)


def test_the_dag_id_is_the_dags(plugin: ModuleType, dagbag) -> None:
    assert plugin.DAG_ID in dagbag.dags


def test_buttons_only_on_pixtags_own_dag(plugin: ModuleType, airflow_db) -> None:
    docs = plugin.DataDocsLink()
    assert docs.get_link(None, ti_key=key(plugin.DAG_ID, "validate")).endswith("/pixtag/data-docs/index.html")
    assert docs.get_link(None, ti_key=key("someone_elses_dag", "validate")) == ""
    for link in (plugin.MlflowRunLink(), plugin.ModelVersionLink()):
        assert link.get_link(None, ti_key=key("someone_elses_dag", link.task_id)) == ""
        # On pixtag's DAG the button reads the task's result (none recorded for this run: no link).
        assert link.get_link(None, ti_key=key(plugin.DAG_ID, link.task_id)) == ""
