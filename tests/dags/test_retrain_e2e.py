"""`pixtag_retrain` end to end with `dag.test()` against the local instance (offline backbone,
a small quota per class), then twice more through Params: remove a class, add it back; and once
more with nothing new, which reuses everything. Then, on the same storage and registry (reusing
those candidates, nothing trained again), a person in the loop (``promotion: human``) rejects a
challenger, and next time nobody answers: the report states both, the champion stays."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pixtag.tags.select import FORCE_HINT
from pixtag_demo.app import DemoInstance
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


def check_study_figures(tracking_uri: str, run_id: str, storage: str) -> None:
    """The candidate's run carries the study's figures (PNG + table), and their numbers are
    the dataset's: the manifest, the split, the stored trending run."""
    import mlflow
    import pandas as pd

    from pixtag.core.dataset import read_manifest
    from pixtag.core.storage import open_storage
    from pixtag.tags.trending import latest_run

    mlflow.set_tracking_uri(tracking_uri)
    local = Path(mlflow.artifacts.download_artifacts(run_id=run_id))
    pngs = {str(p.relative_to(local)) for p in local.rglob("*.png")}
    for name in ("plots/confusion_cv_mean", "plots/fold_accuracy", "plots/tsne", "describe/pixel_counts",
                 "describe/aspect_ratio", "describe/cropped_share", "describe/intensity",
                 "describe/dynamic_range", "describe/mean_images", "describe/copies_pixel_counts",
                 "describe/originals_intensity", "describe/originals_dynamic_range",
                 "describe/originals_mean_images", "tags/sample", "tags/top20_before_after",
                 "tags/top100_normalised", "classes/wup", "classes/overlap_graph", "classes/candidates"):
        assert f"{name}.png" in pngs, (name, sorted(pngs))
        assert (local / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    store = open_storage(storage)
    manifest = read_manifest(store)
    labels = sorted(manifest["label"].unique())
    read = lambda name: json.loads((local / name).read_text())  # noqa: E731

    # model: the folds' confusion matrices cover the train part once, the test one the test part
    split = read("split.json")
    label_of = dict(zip(manifest["sha256"], manifest["label"], strict=True))
    cv = read("plots/confusion_cv_mean.json")
    assert cv["labels"] == labels
    folds = [pd.DataFrame(m, index=labels, columns=labels) for m in cv["folds"]]
    train_counts = pd.Series([label_of[s] for s in split["train"]]).value_counts()
    assert sum(f.sum(axis=1) for f in folds).to_dict() == train_counts.reindex(labels).to_dict()
    np.testing.assert_allclose(cv["matrix"], (sum(folds) / len(folds)).to_numpy())
    accuracy = read("plots/fold_accuracy.json")
    assert accuracy["folds"] == pytest.approx([f.to_numpy().trace() / f.to_numpy().sum() for f in folds])
    test = pd.DataFrame(read("plots/confusion_test.json")["matrix"], index=labels, columns=labels)
    assert test.sum(axis=1).to_dict() == pd.Series(split["test_labels"]).value_counts().reindex(labels).to_dict()
    assert accuracy["test_accuracy"] == pytest.approx(test.to_numpy().trace() / test.to_numpy().sum())
    tsne = pd.read_csv(local / "plots" / "tsne.csv")
    assert len(tsne) == len(manifest) and (tsne["label"] == tsne["sha256"].map(label_of)).all()

    # images: the descriptive set, originals and stored copies
    summary = read("describe/summary.json")
    assert read("describe/cropped_share.json") == pytest.approx(
        {**manifest.groupby("label")["cropped"].mean().to_dict(), "all": manifest["cropped"].mean()}, abs=1e-4)
    pixels = manifest["orig_width"] * manifest["orig_height"]
    assert {k: v["max"] for k, v in read("describe/pixel_counts.json").items()} == {
        **pixels.groupby(manifest["label"]).max().to_dict(), "all": pixels.max()}
    assert {k: v["mean"] for k, v in read("describe/copies_aspect_ratio.json").items()} == dict.fromkeys(labels, 1.0)
    assert summary["originals"]["stored"] == len(manifest) and summary["originals"]["missing"] == 0
    counts = manifest["label"].value_counts().to_dict()
    for name in ("describe/mean_images.json", "describe/originals_mean_images.json"):
        assert {k: v["count"] for k, v in read(name).items()} == counts
    for name in ("describe/dynamic_range.json", "describe/originals_dynamic_range.json"):
        ranges = read(name)["per_image"]
        assert len(ranges) == len(manifest) and all(0 <= r <= 255 for r in ranges)
    for channel in read("describe/originals_intensity.json")["channels"].values():
        assert 0 <= channel["min"] <= channel["mean"] <= channel["max"] <= 255

    # tags and classes: the stored trending run that gave the classes
    run = latest_run(store)
    assert run is not None
    sample = read("tags/sample.json")
    assert (sample["posts"], sample["unique_before"], sample["unique_after"]) == (
        run.posts, len(run.raw), len(run.words))
    assert sample["hashtags"] == sum(run.raw.values())
    assert [w for w, _ in read("tags/top100_normalised.json")] == list(run.words)[:100]
    assert [t for t, _ in read("tags/top20_before_after.json")["before"]] == list(run.raw)[:20]
    wup = read("classes/wup.json")
    assert wup["labels"] == labels
    matrix = pd.DataFrame(wup["matrix"], index=labels, columns=labels)
    assert (matrix.to_numpy().diagonal() == 1.0).all() and (matrix == matrix.T).all().all()
    assert 0.5 < matrix.loc["cat", "dog"] < 1.0
    candidates = read("classes/candidates.json")
    assert [c["word"] for c in candidates] == list(run.words)[:100]
    assert {c["word"] for c in candidates if c["status"] == "class"} == set(labels) & set(list(run.words)[:100])
    assert all(c["reason"] for c in candidates if c["status"] != "class")
    reasons = {c["word"]: c["reason"] for c in candidates}
    for edge in read("classes/overlap_graph.json"):
        assert reasons[edge["word"]].startswith(f"{edge['relation']} of {edge['class']}")


@pytest.fixture(scope="module")
def pipeline_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Storage and registry shared by this module's tests: the later ones reuse the candidates
    the first one trained (the settings themselves are set per test, see tests/conftest.py)."""
    return tmp_path_factory.mktemp("retrain")


@pytest.fixture
def pipeline_env(monkeypatch: pytest.MonkeyPatch, demo: DemoInstance, pipeline_home: Path) -> dict[str, str]:
    env = {
        "PIXTAG_STORAGE": str(pipeline_home / "store"),
        "PIXTAG_MLFLOW_URI": f"sqlite:///{pipeline_home / 'mlflow.db'}",
        "PIXTAG_ALLOW_PRIVATE_HOSTS": "127.0.0.1",
        "PIXTAG_REQUEST_RATE": "50",
        "PIXTAG_PER_CLASS": "60",
        "PIXTAG_MIN_PER_CLASS": "40",
        "PIXTAG_BACKBONE": "efficientnet_lite0",
        "PIXTAG_ACCURACY_FLOOR": "0.9",
        "PIXTAG_MAX_CLASSES": "5",  # the study's protocol (the fourth run raises it through its Param)
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    connection = {"conn_type": "http", "host": demo.url, "password": DEMO_TOKEN}
    monkeypatch.setenv("AIRFLOW_CONN_PIXELFED_DEFAULT", json.dumps(connection))
    return env


def test_retrain_promotes_a_champion_then_follows_the_params(airflow_db: Path, dagbag: Any,
                                                              pipeline_env: dict[str, str],
                                                              caplog: pytest.LogCaptureFixture) -> None:
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
    check_study_figures(pipeline_env["PIXTAG_MLFLOW_URI"], champion.run_id, pipeline_env["PIXTAG_STORAGE"])

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
    # and no new champion to announce. A tag added that overlaps a class is refused, with its
    # reason in the run's report and its log, and changes nothing. An added tag with no images on
    # the instance (horse) is scraped, then left out of this run with its count and the minimum
    # while the others train; with the classes full (Param max_classes), the one that made room
    # for it is named.
    fourth = dag.test(run_conf={"add_tags": ["puppies", "horse"], "remove_tags": [], "max_classes": 6})
    assert fourth.state == "success"
    states = {(ti.task_id, ti.map_index): ti.state for ti in fourth.get_task_instances()}
    assert states[("announce_champion", -1)] == "skipped", states
    scraped = [xcom(fourth, "scrape", i) for i in range(6)]
    assert {s["label"] for s in scraped} == CLASSES | {"horse"} and sum(s["downloaded"] for s in scraped) == 0
    assert sum(1 for task, _ in states if task == "extract_features") == 5  # horse is not extracted
    assert sum(xcom(fourth, "extract_features", i)["computed"] for i in range(5)) == 0
    kept = xcom(fourth, "kept_labels")
    assert set(kept) == CLASSES and kept == xcom(fourth, "assemble")["classes"]
    report = xcom(fourth, "report")
    assert report["reused"] is True and report["decision"]["new_champion"] is False
    assert set(report["classes"]) == CLASSES | {"horse"} and set(report["counts"]) == CLASSES
    assert report["left_out"] == {"horse": "0 images, minimum 40"}
    assert [n for n in report["notes"].values() if n.startswith("made room for the added tag horse: the classes "
                                                                  "were full (max_classes 6)")], report["notes"]
    assert report["refused"] == {"puppy": f"added tag refused: hyponym of dog; {FORCE_HINT}"}
    assert "'puppy' is not made a class: added tag refused: hyponym of dog" in caplog.text
    assert "left out this run: horse (0 images, minimum 40)" in caplog.text
    assert len(client.search_model_versions("name='pixtag'")) == 2


# ------------------------------------------------------------------ a person in the loop -----
DAG_ID = "pixtag_retrain"
NOTE = "flowers are back next week; keep the five-class model"


class WaitingForInput(logging.Handler):
    """Set each time dag.test() says it waits for a person (every second while it does)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.waiting = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "Waiting for Human-in-the-loop input" in record.getMessage():
            self.waiting.set()


@pytest.fixture
def person(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[Callable[[str], None]], threading.Thread]]:
    """``person(act)``: a thread that waits until approve_promotion of the running dag.test() run
    waits for input, then calls ``act(run_id)``; its exception, if any, fails the test.

    It answers only once dag.test() has said it waits *after* the task was parked: dag.test()
    writes the paused task's state itself once the task returns, and an answer given before
    that would be overwritten (Airflow's REST callers wait likewise, see tests/ui)."""
    import time

    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    watcher = WaitingForInput()
    logger = logging.getLogger("airflow.sdk.definitions.dag")
    caplog.set_level(logging.INFO, logger=logger.name)
    logger.addHandler(watcher)
    errors: list[BaseException] = []

    def parked() -> str | None:
        """The run whose approve_promotion waits, unanswered."""
        with create_session() as session:
            row = (session.query(TaskInstance.run_id).join(HITLDetail, HITLDetail.ti_id == TaskInstance.id)
                   .filter(TaskInstance.dag_id == DAG_ID, TaskInstance.task_id == "approve_promotion",
                           TaskInstance.state == TaskInstanceState.AWAITING_INPUT,
                           HITLDetail.responded_at.is_(None)).first())
        return row.run_id if row else None

    def start(act: Callable[[str], None]) -> threading.Thread:
        def answer() -> None:
            deadline = time.monotonic() + 600
            try:
                while (run_id := parked()) is None:
                    assert time.monotonic() < deadline, "approve_promotion never waited for a person"
                    time.sleep(0.5)
                watcher.waiting.clear()
                assert watcher.waiting.wait(60), "dag.test() never said it waits for a person"
                act(run_id)
            except BaseException as exc:
                errors.append(exc)
                while time.monotonic() < deadline:  # fail the task, or dag.test() would wait for ever
                    with create_session() as session:
                        waiting = session.query(TaskInstance).filter_by(dag_id=DAG_ID,
                                                                         state=TaskInstanceState.AWAITING_INPUT).all()
                        for ti in waiting:
                            ti.state = TaskInstanceState.FAILED
                    if waiting:
                        break
                    time.sleep(1)

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        return thread

    yield start
    logger.removeHandler(watcher)
    if errors:
        raise errors[0]


def reject_as(user: str, note: str) -> Callable[[str], None]:
    """*Reject* as ``user`` would in the UI: the handler of Airflow's REST endpoint (PATCH
    .../hitlDetails), called on the metadata DB dag.test() runs on."""
    def act(run_id: str) -> None:
        from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
        from airflow.api_fastapi.core_api.datamodels.hitl import UpdateHITLDetailPayload
        from airflow.api_fastapi.core_api.routes.public.hitl import update_hitl_detail
        from airflow.utils.session import create_session

        with create_session() as session:
            update_hitl_detail(dag_id=DAG_ID, dag_run_id=run_id, task_id="approve_promotion", map_index=-1,
                               update_hitl_detail_payload=UpdateHITLDetailPayload(
                                   chosen_options=["Reject"], params_input={"note": note}),
                               user=SimpleAuthManagerUser(username=user, role="admin"), session=session)

    return act


def let_it_time_out(run_id: str) -> None:
    """The response deadline passes and the scheduler's sweep resolves the approval (no defaults:
    it resumes the task with a timeout event), as a running scheduler would."""
    from datetime import UTC, datetime, timedelta
    from types import SimpleNamespace

    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        ti = session.query(TaskInstance).filter_by(dag_id=DAG_ID, run_id=run_id, task_id="approve_promotion").one()
        ti.trigger_timeout = datetime.now(UTC) - timedelta(seconds=1)
    SchedulerJobRunner.check_awaiting_input_timeouts(SimpleNamespace(log=logging.getLogger("sweep")))


def test_a_person_rejects_a_challenger_then_nobody_answers(
        airflow_db: Path, dagbag: Any, pipeline_env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
        person: Callable[[Callable[[str], None]], threading.Thread]) -> None:
    """promotion: human. The five-class champion stays; the four-class candidate (without
    "flower") passes the gate (a new label set only needs the floor) and becomes @challenger."""
    from mlflow import MlflowClient

    dag = dagbag.dags[DAG_ID]
    client = MlflowClient(pipeline_env["PIXTAG_MLFLOW_URI"])
    if not client.search_registered_models("name='pixtag'"):  # run alone: the first test's champion first
        assert dag.test(run_conf={"add_tags": [], "remove_tags": []}).state == "success"
    champion = str(client.get_model_version_by_alias("pixtag", "champion").version)
    monkeypatch.setenv("PIXTAG_PROMOTION", "human")

    answered = person(reject_as("reviewer", NOTE))
    rejected = dag.test(run_conf={"remove_tags": ["flower"], "add_tags": []})
    answered.join(60)
    states = {ti.task_id: ti.state for ti in rejected.get_task_instances()}
    assert rejected.state == "success", states
    assert states["approve_promotion"] == "success" and states["announce_champion"] == "skipped", states
    assert states["report"] == "success", states  # after a Reject, which skips announce_champion
    report = xcom(rejected, "report")
    # trained on the four classes left (what is selected beside them may be left out for too few images)
    assert set(report["counts"]) == CLASSES - {"flower"}
    candidate = report["decision"]["version"]
    assert report["decision"]["decision"] == "challenger" and candidate != champion
    approval = report["approval"]
    assert (approval["outcome"], approval["approved"], approval["by"], approval["note"]) == (
        "rejected", False, "reviewer", NOTE)
    assert approval["version"] == candidate and approval["at"] and not approval["new_champion"]
    assert xcom(rejected, "approve_promotion") == approval
    assert str(client.get_model_version_by_alias("pixtag", "champion").version) == champion  # did not move
    tags = client.get_model_version("pixtag", candidate).tags
    assert (tags["pixtag.gate.rejected_by"], tags["pixtag.gate.rejection_reason"]) == ("reviewer", NOTE)
    versions = len(client.search_model_versions("name='pixtag'"))

    unanswered = person(let_it_time_out)
    late = dag.test(run_conf={"remove_tags": ["flower"], "add_tags": []})
    unanswered.join(60)
    states = {ti.task_id: ti.state for ti in late.get_task_instances()}
    assert late.state == "success" and states["report"] == "success", states
    assert states["approve_promotion"] == "success" and states["announce_champion"] == "skipped", states
    report = xcom(late, "report")
    # Nothing new to train: the candidate of these images is reused (this one, or the four-class
    # candidate of an earlier test: the rejected run's selection also held `pet`, whose posts with
    # a class tag that class then lost; `pet` was left out and is not selected again).
    assert report["reused"] is True and report["decision"]["decision"] == "challenger"
    assert (report["approval"]["outcome"], report["approval"]["by"]) == ("timed out", None)
    assert str(client.get_model_version_by_alias("pixtag", "champion").version) == champion
    assert str(client.get_registered_model("pixtag").aliases.get("challenger")) == report["decision"]["version"]
    assert len(client.search_model_versions("name='pixtag'")) == versions  # nothing new was trained
