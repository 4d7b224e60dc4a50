"""The DAG parses, is wired as designed, and stays cheap to parse (Astro-style integrity test)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.dags.conftest import REPO

HEAVY = ("torch", "timm", "mlflow", "great_expectations", "sklearn", "matplotlib", "nltk", "pandas")
NETWORK_TASKS = {"refresh_trending", "scrape", "register"}


@pytest.fixture(scope="module")
def dag(dagbag):
    assert dagbag.import_errors == {}, dagbag.import_errors
    return dagbag.dags["pixtag_retrain"]


def test_dag_is_the_only_one_and_has_no_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == {"pixtag_retrain"}


def test_schedule_and_run_policy(dag) -> None:
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert dag.timetable.expression in ("@weekly", "0 0 * * 0")
    assert {"pixtag", "mlops"} <= set(dag.tags)
    assert dag.doc_md and "pixtag_retrain" in dag.doc_md


def test_tasks_in_order(dag) -> None:
    order = ["refresh_trending", "select_classes", "class_names", "labels_of", "scrape", "assemble", "kept_labels",
             "validate", "review_images", "extract_features", "train", "register", "approve_promotion",
             "announce_champion", "report"]
    assert set(dag.task_ids) == set(order)
    for upstream, downstream in [("refresh_trending", "select_classes"), ("class_names", "labels_of"),
                                 ("labels_of", "scrape"), ("scrape", "assemble"), ("assemble", "kept_labels"),
                                 ("kept_labels", "extract_features"),  # a class left out is not extracted
                                 ("assemble", "validate"), ("validate", "extract_features"),
                                 ("extract_features", "train"), ("train", "register"),
                                 ("register", "announce_champion"), ("validate", "review_images"),
                                 ("review_images", "extract_features"), ("register", "approve_promotion"),
                                 ("approve_promotion", "announce_champion"), ("announce_champion", "report")]:
        assert downstream in dag.get_task(upstream).downstream_task_ids, (upstream, downstream)


def test_the_report_runs_after_the_approval_whatever_it_was(dag) -> None:
    """On Reject, ApprovalOperator skips its *direct* downstream tasks whatever their trigger rule
    (announce_champion: no new champion); the report is not one of them. It comes after the
    announcement and runs whether that ran or was skipped, but not after a failed task it reads."""
    approval, report = dag.get_task("approve_promotion"), dag.get_task("report")
    assert approval.downstream_task_ids == {"announce_champion"}
    assert approval.ignore_downstream_trigger_rules is False and approval.fail_on_reject is False
    assert report.trigger_rule == "none_failed"
    assert {"select_classes", "assemble", "train", "register", "announce_champion"} == report.upstream_task_ids
    assert "approve_promotion" in report.get_flat_relative_ids(upstream=True)


def test_the_review_and_the_note_may_be_left_empty(dag) -> None:
    """Airflow's form (FlexibleForm/isParamRequired) marks a Param required and keeps OK/Approve
    disabled while it is empty unless its type allows null; empty, it sends null (or a script "")."""
    for task_id, name in (("review_images", "exclusions"), ("approve_promotion", "note")):
        task = dag.get_task(task_id)
        schema = task.serialized_params[name]["schema"]
        assert isinstance(schema["type"], list) and "null" in schema["type"] and "string" in schema["type"]
        for empty in (None, "", "cat:1\ndog:2"):
            task.validate_params_input({name: empty})  # what execute_complete checks first
    assert dag.get_task("review_images").serialized_params["exclusions"]["schema"]["format"] == "multiline"


def test_an_unanswered_approval_is_an_outcome_the_report_states(dag) -> None:
    """The scheduler resumes a timed-out approval with an error event: the task ends with the
    outcome (the candidate stays @challenger), not HITLTimeoutError."""
    from pixtag.pipeline.results import Approval, Decision

    decision = Decision(model_name="pixtag", version="2", decision="challenger", promoted=False, alias="challenger",
                        reason="r", test_accuracy=0.95, message="m", model_uri="models:/pixtag/2")

    class TaskInstance:
        def xcom_pull(self, task_ids: str) -> dict:
            assert task_ids == "register"
            return decision.xcom()

    event = {"error": "The Human-in-the-loop response timeout has passed without a response.",
             "error_type": "timeout"}
    out = Approval.model_validate(dag.get_task("approve_promotion").execute_complete({"ti": TaskInstance()}, event))
    assert (out.outcome, out.approved, out.version, out.by) == ("timed out", False, "2", None)


def test_pools_queues_and_retries(dag) -> None:
    pools = json.loads((REPO / "airflow" / "pools.json").read_text())
    for task in dag.tasks:
        assert task.pool == "default_pool" or task.pool in pools, (task.task_id, task.pool)
    assert dag.get_task("scrape").pool == "pixelfed_api"
    assert dag.get_task("refresh_trending").pool == "pixelfed_api"
    assert dag.get_task("extract_features").pool == "gpu"
    assert dag.get_task("extract_features").queue == "gpu"
    for task_id in NETWORK_TASKS:
        task = dag.get_task(task_id)
        assert task.retries >= 3 and task.retry_exponential_backoff, task_id
    assert dag.get_task("validate").retries == 0  # bad data does not get better by retrying
    # the required actions are Airflow's human-in-the-loop operators, not a waiting loop of ours
    from airflow.providers.standard.operators.hitl import ApprovalOperator, HITLEntryOperator

    assert isinstance(dag.get_task("review_images"), HITLEntryOperator)
    assert isinstance(dag.get_task("approve_promotion"), ApprovalOperator)
    assert dag.get_task("review_images").defaults is None  # unanswered: the run stops by default


def test_mapped_per_class(dag) -> None:
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    assert isinstance(dag.get_task("scrape"), MappedOperator)
    assert isinstance(dag.get_task("extract_features"), MappedOperator)


def test_params_are_validated_and_visible(dag) -> None:
    from airflow.sdk.definitions.param import ParamsDict

    params = dag.params
    assert {"add_tags", "remove_tags", "per_class", "backbone", "accuracy_floor", "tolerance",
            "posts_to_sample", "timeline", "force_tags", "confirm_tags", "max_classes"} <= set(params.keys())
    for name in params:
        assert params.get_param(name).schema.get("title"), name
    good = ParamsDict({k: params.get_param(k) for k in params})
    good.update({"add_tags": ["ferret"], "per_class": 50, "accuracy_floor": 0.8, "timeline": "federated",
                 "force_tags": ["tabby"], "confirm_tags": ["ramen"], "max_classes": 5})
    good.validate()
    for bad in ({"per_class": 3}, {"accuracy_floor": 2}, {"add_tags": ["two words"]},
                {"backbone": "resnet9000"}, {"tolerance": -1}, {"timeline": "global"}, {"max_classes": 1},
                {"confirm_tags": ["ramen noodles"]}):
        trial = ParamsDict({k: params.get_param(k) for k in params})
        with pytest.raises(Exception, match="Invalid input|not valid|is not|less than|greater"):
            trial.update(bad)
            trial.validate()


def test_parsing_is_cheap_and_imports_nothing_heavy() -> None:
    code = (
        "import sys, time; t = time.perf_counter();"
        f"sys.path.insert(0, {str(REPO / 'dags')!r}); import pixtag_retrain;"
        "print(time.perf_counter() - t);"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    seconds, loaded = out.stdout.strip().splitlines()[-2:] if out.stdout.strip().count("\n") else (out.stdout, "")
    assert float(seconds) < 10, f"parse took {seconds} s"
    assert loaded == "", f"heavy modules imported at parse time: {loaded}"
    assert time.perf_counter() - start < 30
