"""`pixtag_retrain` end to end with `dag.test()` against the local instance (offline backbone,
a small quota per class), then twice more through Params: remove a class, add it back; and once
more with nothing new, which reuses everything."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pixtag.demo.server import DemoInstance
from tests.conftest import DEMO_TOKEN

pytestmark = pytest.mark.slow
CLASSES = {"cat", "dog", "bird", "flower", "car"}


def xcom(run: Any, task_id: str, map_index: int = -1) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.execute(
            XComModel.get_many(key="return_value", run_id=run.run_id, dag_ids=run.dag_id, task_ids=task_id,
                               map_indexes=map_index).with_only_columns(XComModel.value)
        ).first()
    assert row is not None, f"no result from {task_id}"
    return json.loads(row.value) if isinstance(row.value, str) else row.value


def xcom_keys(run: Any) -> list[str]:
    """The key of every XCom the run pushed."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        return list(session.scalars(XComModel.get_many(run_id=run.run_id, dag_ids=run.dag_id)
                                    .with_only_columns(XComModel.key)))


@pytest.fixture
def pipeline_env(monkeypatch: pytest.MonkeyPatch, demo: DemoInstance, tmp_path: Path) -> dict[str, str]:
    env = {
        "PIXTAG_STORAGE": str(tmp_path / "store"),
        "PIXTAG_MLFLOW_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "PIXTAG_ALLOW_PRIVATE_HOSTS": "127.0.0.1",
        "PIXTAG_REQUEST_RATE": "50",
        "PIXTAG_PER_CLASS": "60",
        "PIXTAG_MIN_PER_CLASS": "40",
        "PIXTAG_BACKBONE": "efficientnet_lite0",
        "PIXTAG_ACCURACY_FLOOR": "0.9",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    connection = {"conn_type": "http", "host": demo.url, "password": DEMO_TOKEN}
    monkeypatch.setenv("AIRFLOW_CONN_PIXELFED_DEFAULT", json.dumps(connection))
    return env


def test_retrain_promotes_a_champion_then_follows_the_params(airflow_db: Path, dagbag: Any,
                                                              pipeline_env: dict[str, str]) -> None:
    from mlflow import MlflowClient

    dag = dagbag.dags["pixtag_retrain"]
    first = dag.test(run_conf={})
    states = {(ti.task_id, ti.map_index): ti.state for ti in first.get_task_instances()}
    assert first.state == "success", states
    assert all(state == "success" for state in states.values()), states
    assert sum(1 for task, _ in states if task == "scrape") == 5
    report = xcom(first, "report")
    assert set(report["classes"]) == CLASSES
    # Each task instance pushes one XCom (its summary), not one more per key of it.
    keys = xcom_keys(first)
    assert set(keys) == {"return_value"} and len(keys) == len(states) - 1  # announce returns None
    assert report["counts"] == dict.fromkeys(report["classes"], 60)
    assert report["test_accuracy"] >= 0.9
    decision = report["decision"]
    assert decision["promoted"] is True

    client = MlflowClient(pipeline_env["PIXTAG_MLFLOW_URI"])
    champion = client.get_model_version_by_alias("pixtag", "champion")
    assert str(champion.version) == str(decision["version"])
    assert float(champion.tags["pixtag.gate.test_accuracy"]) >= 0.9
    assert champion.tags["pixtag.gate.decision"] == "promoted"
    params = client.get_run(champion.run_id).data.params
    assert "token" not in json.dumps(params).lower() and DEMO_TOKEN not in json.dumps(params)

    # dag.test() keeps one DAG object between runs and its Params keep a previous run's conf,
    # so each run states both lists (a scheduler-made run starts from the defaults anyway).
    second = dag.test(run_conf={"remove_tags": ["flower"], "add_tags": []})
    assert second.state == "success"
    assert set(xcom(second, "report")["classes"]) == CLASSES - {"flower"}
    assert set(xcom(second, "select_classes")["vocabulary"]["removed"]) == {"flower"}

    # Adding the class back gives the first run's images again: its candidate is reused (not
    # retrained) and, the label set having changed, becomes the champion again.
    third = dag.test(run_conf={"add_tags": ["Flowers"], "remove_tags": []})
    assert third.state == "success"
    report = xcom(third, "report")
    assert set(report["classes"]) == CLASSES
    assert xcom(third, "select_classes")["vocabulary"] == {"added": ["flower"], "removed": []}
    assert report["reused"] is True and xcom(third, "validate")["cached"] is True
    assert report["decision"]["version"] == decision["version"] and report["decision"]["new_champion"] is True
    assert str(client.get_model_version_by_alias("pixtag", "champion").version) == str(decision["version"])
    labels = {int(v.version): set(v.tags["pixtag.gate.labels"].split(","))
              for v in client.search_model_versions("name='pixtag'")}
    assert labels == {1: CLASSES, 2: CLASSES - {"flower"}}

    # Nothing new on the instance: nothing downloaded, computed, validated or trained again,
    # and no new champion to announce.
    fourth = dag.test(run_conf={"add_tags": [], "remove_tags": []})
    assert fourth.state == "success"
    states = {ti.task_id: ti.state for ti in fourth.get_task_instances()}
    assert states["announce_champion"] == "skipped", states
    assert sum(xcom(fourth, "scrape", i)["downloaded"] for i in range(5)) == 0
    assert sum(xcom(fourth, "extract_features", i)["computed"] for i in range(5)) == 0
    report = xcom(fourth, "report")
    assert report["reused"] is True and report["decision"]["new_champion"] is False
    assert len(client.search_model_versions("name='pixtag'")) == 2
