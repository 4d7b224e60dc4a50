"""The single-machine reference for the distributed tier: ``pixtag_retrain`` with ``dag.test()``
(one process, SQLite Airflow, local storage, SQLite MLflow), against the instance and settings
the environment names. Prints one JSON line: the champion's report and where its model files are.

    python tests/distributed/single_machine.py OUT_DIR
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def main(out: Path) -> None:
    home = out / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    os.environ.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
    })
    import mlflow
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils import db
    from mlflow import MlflowClient

    db.resetdb()
    run = DagBag(dag_folder=str(REPO / "dags")).dags["pixtag_retrain"].test(run_conf={})
    states = {f"{ti.task_id}[{ti.map_index}]": ti.state for ti in run.get_task_instances()}
    uri = os.environ["PIXTAG_MLFLOW_URI"]
    client = MlflowClient(uri)
    champion = client.get_model_version_by_alias("pixtag", "champion")
    mlflow.set_tracking_uri(uri)
    model_dir = mlflow.artifacts.download_artifacts(f"models:/pixtag/{champion.version}", dst_path=str(out / "model"))
    report = mlflow.artifacts.load_dict(f"{client.get_run(champion.run_id).info.artifact_uri}/report.json")
    print(json.dumps({"state": str(run.state), "tasks": states, "report": report, "model_dir": model_dir}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
