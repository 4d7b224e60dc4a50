"""An incremental re-run, timed: `pixtag_retrain` twice on the same data, the second time with
no new posts on the instance.

The second run must re-download nothing, recompute no feature, re-validate nothing and retrain
nothing; the target is that it takes at most 10 % of the first run's wall time. Each run is
``dag.test()`` in a fresh process (the DAG's own tasks, in order, with no scheduler or executor
latency between them; SQLite Airflow, local storage), against the local instance on the photos
and an MLflow server (SQLite, local artifacts), as ``pixtag local run`` has them, each started as
a separate process. A run's wall time is its ``dag.test()`` call, with
Airflow's execution API already started, as a deployment's api-server is (dag.test() otherwise
builds it in-process on its first task: 5-10 s that belong to no run); both runs alike.

    python bench/rerun.py [--photos DIR] [--per-class 150] [--rate 20]

``--rate`` is the API request rate (PIXTAG_REQUEST_RATE; pixtag's default is 2 per second, polite
to a real instance). Both runs page every class's timelines at it, the second to re-check each
kept post (deleted, locked, opted out), so a low rate adds the same seconds to both runs.

Prints each task's duration in both runs; the last line is JSON:
{"first_s": ..., "second_s": ..., "ratio": ..., "downloaded_second": ..., "computed_second": ..., ...}
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PORT = 8792
MLFLOW_PORT = 5092


def warm_execution_api() -> None:
    """Start the in-process execution API that dag.test() runs its tasks against."""
    import httpx
    from airflow.sdk.execution_time.supervisor import in_process_api_server

    with httpx.Client(transport=in_process_api_server().transport, base_url="http://in-process.invalid") as api:
        api.get("/health").raise_for_status()


def child(out: Path) -> None:
    """One run with dag.test() in this process; prints its figures as one JSON line."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    dag = DagBag(dag_folder=str(REPO / "dags")).dags["pixtag_retrain"]
    warm_execution_api()
    started = time.perf_counter()
    run = dag.test(run_conf={})
    seconds = time.perf_counter() - started
    tasks, values = {}, {}
    with create_session() as session:
        for ti in run.get_task_instances(session=session):
            key = ti.task_id + (f"[{ti.map_index}]" if ti.map_index >= 0 else "")
            tasks[key] = round((ti.end_date - ti.start_date).total_seconds(), 2) if ti.end_date else None
            row = session.execute(XComModel.get_many(key="return_value", run_id=run.run_id, dag_ids=run.dag_id,
                                                     task_ids=ti.task_id, map_indexes=ti.map_index)
                                  .with_only_columns(XComModel.value)).first()
            if row is not None:
                values[key] = json.loads(row.value) if isinstance(row.value, str) else row.value
    print(json.dumps({
        "state": str(run.state), "seconds": round(seconds, 2), "tasks": tasks,
        "downloaded": sum(v.get("downloaded", 0) for k, v in values.items() if k.startswith("scrape[")),
        "computed": sum(v.get("computed", 0) for k, v in values.items() if k.startswith("extract_features[")),
        "validated_cached": bool((values.get("validate") or {}).get("cached")),
        "reused": bool((values.get("train") or {}).get("reused")),
        "report": values.get("report"),
    }, default=str))


def start_mlflow(tmp: Path, env: dict[str, str]) -> subprocess.Popen:
    import requests

    proc = subprocess.Popen([str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1",
                             "--port", str(MLFLOW_PORT), "--workers", "1",
                             "--backend-store-uri", f"sqlite:///{tmp / 'mlflow.db'}",
                             "--artifacts-destination", str(tmp / "mlflow-artifacts")],
                            env={**env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},  # as pixtag local
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if requests.get(f"http://127.0.0.1:{MLFLOW_PORT}/health", timeout=2).ok:
                return proc
        except requests.RequestException:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("the MLflow server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=Path(os.environ.get("PIXTAG_PHOTOS",
                                                                            REPO.parent / "shared/data/photos5")))
    parser.add_argument("--per-class", type=int, default=150)
    parser.add_argument("--rate", type=float, default=20.0, help="API requests per second")
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return

    sys.path.insert(0, str(REPO / "bench"))
    from scrape import TOKEN, start_instance

    tmp = Path(tempfile.mkdtemp(prefix="pixtag-rerun-"))
    home = tmp / "airflow"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PIXTAG_"))}
    env.update({
        "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW_CONN_PIXELFED_DEFAULT": json.dumps({"conn_type": "http", "host": f"http://127.0.0.1:{PORT}",
                                                     "password": TOKEN}),
        "PIXTAG_STORAGE": str(tmp / "store"), "PIXTAG_MLFLOW_URI": f"http://127.0.0.1:{MLFLOW_PORT}",
        "PIXTAG_ALLOW_PRIVATE_HOSTS": "127.0.0.1", "PIXTAG_REQUEST_RATE": str(args.rate),
        "PIXTAG_PER_CLASS": str(args.per_class), "PIXTAG_MIN_PER_CLASS": str(min(100, args.per_class)),
        "PIXTAG_BACKBONE": "efficientnet_lite0", "PIXTAG_MAX_CLASSES": "5",  # the study's protocol
    })
    home.mkdir(parents=True)
    subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"], env=env, check=True,
                   capture_output=True)
    instance = start_instance(args.photos, PORT)
    mlflow = start_mlflow(tmp, env)
    runs: list[dict[str, Any]] = []
    try:
        for _ in range(2):
            proc = subprocess.run([sys.executable, __file__, "--child", str(tmp)], env=env, capture_output=True,
                                  text=True, cwd=tmp)
            if proc.returncode != 0:
                raise SystemExit(f"dag.test() failed:\n{proc.stderr[-3000:]}")
            runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    finally:
        for proc in (instance, mlflow):
            proc.terminate()
            proc.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)

    first, second = runs
    if {first["state"], second["state"]} != {"success"}:
        raise SystemExit(f"a run did not succeed ({first['state']}, {second['state']}): no ratio to report")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    print(f"{'task':<24} {'first s':>8} {'second s':>9}")
    for task, took in first["tasks"].items():
        print(f"{task:<24} {took!s:>8} {second['tasks'].get(task)!s:>9}")
    print(f"{'run (dag.test)':<24} {first['seconds']:>8} {second['seconds']:>9}   "
          f"({first['state']}, {second['state']})")
    print(f"second run: downloaded {second['downloaded']}, features computed {second['computed']}, "
          f"validation reused {second['validated_cached']}, training reused {second['reused']}")
    print(json.dumps({"first_s": first["seconds"], "second_s": second["seconds"],
                      "ratio": round(second["seconds"] / first["seconds"], 3),
                      "downloaded_second": second["downloaded"], "computed_second": second["computed"],
                      "validation_reused": second["validated_cached"], "training_reused": second["reused"],
                      "per_class": args.per_class, "rate": args.rate, "states": [first["state"], second["state"]]}))


if __name__ == "__main__":
    main()
