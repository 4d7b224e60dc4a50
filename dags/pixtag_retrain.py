"""
### pixtag_retrain: keep the hashtag tagger fresh

refresh trending tags → select classes → scrape (one task per class) → merge the dataset (a
class with too few images is left out of this run, named in the report) → validate it with Great
Expectations (a failure stops the run) → with `review: new_images`, wait
for a person to review the new images (*Required actions*) → extract features (one task per
class, `gpu` pool and queue) → train and cross-validate → register in MLflow, promoting only
through the accuracy gate → with `promotion: human`, wait for a person to approve the
`@challenger` (*Required actions*) → announce a new champion (Asset) → report (what the gate and
the person decided, whatever it was: the report also runs after a *Reject* or an unanswered approval).

Trigger it by hand to change the classes: **add_tags** / **remove_tags** / **confirm_tags**
persist for later runs until undone; **max_classes** caps the classes (default 20). Every
stage is a function in `pixtag.pipeline.flow`; each task pushes its
typed result (`pixtag.pipeline.results`) as one JSON XCom: storage URIs and small summaries,
never images or features. A task is handed only the results it reads; edges that only order
are `>>`. The backbone (`auto` resolved) is chosen once, by `select_classes`, and carried.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator, HITLEntryOperator
from airflow.sdk import Asset, CronTriggerTimetable, Param, TriggerRule, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from pixtag.core.config import AUTO_BACKBONE, BACKBONES
from pixtag.pipeline.flow import dag_config

CONFIG = dag_config()
CHAMPION = Asset(name="pixtag_champion", uri=f"models:/{CONFIG.model_name}@champion")
NETWORK = {"retries": 3, "retry_delay": timedelta(seconds=30), "retry_exponential_backoff": 2.0,
           "max_retry_delay": timedelta(minutes=10)}
TAG_PATTERN = "^#?[A-Za-z][A-Za-z0-9_]*$"


def settings() -> Any:
    """This run's settings: configuration + Params + the Pixelfed connection (token stays secret)."""
    from pixtag.pipeline.flow import run_settings

    url, token = pixelfed_connection()
    return run_settings(get_current_context()["params"], instance_url=url, token=token)


def run_context(backbone: str | None = None) -> Any:
    """The task's :class:`~pixtag.pipeline.context.RunContext`, built once: this run's settings,
    its storage opened, and the run's backbone when the task was handed it."""
    from pixtag.pipeline.context import RunContext

    return RunContext.open(settings(), backbone)


def pixelfed_connection() -> tuple[str | None, str | None]:
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = Connection.get(CONFIG.connection_id)
    except AirflowNotFoundException:
        return None, None
    host = conn.host or ""
    if host and "://" not in host:
        host = f"{conn.schema or 'https'}://{host}{f':{conn.port}' if conn.port else ''}"
    return host or None, conn.password or None


def stop_on(error: Exception) -> None:
    """Expected failures (bad data, bad Params) fail the task for good: retrying cannot help."""
    raise AirflowFailException(str(error)) from error


@contextmanager
def final_errors() -> Iterator[None]:
    """Failures a retry cannot fix end the task at once: a bad setting or Param (raised before
    the stage does any work), a token the instance refuses, an outcome that forbids going on."""
    from pixtag.core.config import SettingsError
    from pixtag.pipeline.flow import FlowError
    from pixtag.sources.pixelfed import AuthError

    try:
        yield
    except (SettingsError, AuthError, FlowError) as exc:
        stop_on(exc)


def ui_base() -> str:
    """The Airflow UI/API address people's browsers use (links in the required actions)."""
    from airflow.configuration import conf

    return conf.get("api", "base_url", fallback="").rstrip("/")


def responder(event: dict[str, Any]) -> str:
    user = event.get("responded_by_user") or {}
    return str(user.get("name") or user.get("id") or "unknown") if isinstance(user, dict) else str(user)


class ReviewImages(HITLEntryOperator):
    """With ``review: new_images``: wait for a person's exclusions (the images new since the
    champion, on contact sheets); with ``off`` it passes at once. The answer's exclusions are
    written before the run goes on without them."""

    def execute(self, context: Any) -> Any:
        from pixtag.pipeline.human import review_body, review_request

        with final_errors():
            run = run_context()
            if run.settings.review == "off":
                return {"review": "off"}
            self.body = review_body(review_request(run.settings, ui_base(), run.store))
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        from pixtag.pipeline.human import ReviewInputError, apply_review

        answer = super().execute_complete(context=context, event=event)
        run = run_context()
        try:
            return apply_review(run.settings, answer["params_input"].get("exclusions"), responder(event), run.store)
        except ReviewInputError as exc:
            stop_on(exc)


class ApprovePromotion(ApprovalOperator):
    """With ``promotion: human`` and a ``@challenger`` from the gate: wait for a person, who
    sees it beside the champion; *Approve* moves ``@champion`` (and records who), *Reject*
    keeps the champion (and records why). Otherwise it passes at once. Its result, an
    ``Approval`` (approved / rejected / timed out / not needed), is what the report states."""

    def execute(self, context: Any) -> Any:
        from pixtag.pipeline.human import approval_body, approval_not_needed, disagreement_sheet
        from pixtag.pipeline.results import Decision

        decision = Decision.model_validate(context["ti"].xcom_pull(task_ids="register"))
        if decision.decision != "challenger":
            return approval_not_needed(decision).xcom()
        run = run_context()
        shown = decision.model_dump(mode="json")
        sheet = disagreement_sheet(run.settings, shown, ui_base(), run.store)
        self.body = approval_body(shown, sheet, decision.model_version_url)
        self.subject = f"Promote {decision.model_name} v{decision.version} to @champion?"
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        from pixtag.pipeline.human import approval_timed_out, record_answer
        from pixtag.pipeline.results import Decision

        decision = Decision.model_validate(context["ti"].xcom_pull(task_ids="register"))
        if event.get("error_type") == "timeout":
            # Nobody answered: an outcome, like Reject, not a failure (the champion stays, the
            # candidate stays @challenger), so the announcement skips itself and the report says so.
            return approval_timed_out(decision, CONFIG.review_timeout_hours).xcom()
        self.validate_chosen_options(event["chosen_options"])
        self.validate_params_input(event.get("params_input") or {})
        approved = event["chosen_options"] == [self.APPROVE]
        note = (event.get("params_input") or {}).get("note")  # None or "" when left empty: no note
        answer = record_answer(settings(), decision, approved, responder(event), note, event.get("responded_at"))
        # Pushed by hand: on Reject, ApprovalOperator ends execute_complete by raising Airflow's
        # skip of the direct downstream task (announce_champion), so nothing returned would be.
        context["ti"].xcom_push(key="return_value", value=answer.xcom())
        super().execute_complete(context=context, event=event)
        return None


@dag(
    dag_id="pixtag_retrain",
    # First scheduled run at the next tick after deployment (not one for the tick just missed).
    # Not run_immediately=False: Airflow 3.3 treats False like None and still runs the missed
    # tick if it is less than 10% of the interval old (a weekly cadence: Sundays until 16:48 UTC).
    schedule=CronTriggerTimetable(CONFIG.cadence, timezone="UTC", run_immediately=timedelta(0)),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "pixtag", "retries": 1, "retry_delay": timedelta(minutes=1)},
    tags=["pixtag", "mlops", "pixelfed"],
    doc_md=__doc__,
    params={
        "add_tags": Param([], type="array", items={"type": "string", "pattern": TAG_PATTERN},
                          title="Tags to add", description="Make these tags classes (one per line), "
                          "for this run and the scheduled runs after it."),
        "force_tags": Param([], type="array", items={"type": "string", "pattern": TAG_PATTERN},
                            title="Tags to force", description="Add these tags as classes without the "
                            "class checks (concrete, not polysemous, no hyponym/hypernym/synonym of a class)."),
        "remove_tags": Param([], type="array", items={"type": "string", "pattern": TAG_PATTERN},
                             title="Tags to remove", description="Stop using these tags as classes."),
        "confirm_tags": Param([], type="array", items={"type": "string", "pattern": TAG_PATTERN},
                              title="Tags to confirm", description="Words WordNet lacks (the run's report "
                              "names them) that are concrete, visual things: they then compete like any "
                              "trending tag, and an added one is kept. Lasts until removed."),
        "max_classes": Param(None, type=["null", "integer"], minimum=2, maximum=100,
                             title="Most classes", description="Automatic classes plus added tags (the "
                             "study's protocol: 5). Empty: the configured value (max_classes, 20)."),
        "per_class": Param(None, type=["null", "integer"], minimum=10, maximum=20000,
                           title="Images per class", description="Empty: the configured value (per_class)."),
        "backbone": Param(None, type=["null", "string"],
                          enum=[None, AUTO_BACKBONE, *BACKBONES],
                          title="Backbone", description="Feature extractor (timm name). Empty: configured."),
        "compare_backbones": Param(None, type=["null", "array"], items={"type": "string",
                                   "enum": list(BACKBONES)},
                                   title="Compare backbones", description="Also compare the run's backbone "
                                   "with these on the same folds (Mann-Whitney U and a paired test). "
                                   "Empty: configured."),
        "accuracy_floor": Param(None, type=["null", "number"], minimum=0, maximum=1,
                                title="Accuracy floor", description="Least test accuracy a champion needs."),
        "tolerance": Param(None, type=["null", "number"], minimum=0, maximum=0.5,
                           title="Tolerance", description="How far below the champion a candidate may be."),
        "timeline": Param(None, type=["null", "string"], enum=[None, "local", "federated", "both"],
                          title="Timeline", description="Public timeline sampled for trending tags: local, "
                          "federated (the study's global feed) or both. Empty: configured."),
        "posts_to_sample": Param(None, type=["null", "integer"], minimum=20, maximum=100000,
                                 title="Posts to sample", description="Recent posts read for trending tags."),
    },
)
def pixtag_retrain() -> None:
    from pixtag.pipeline import flow
    from pixtag.pipeline.results import (
        Approval,
        ClassSelection,
        ClassSummary,
        DatasetSummary,
        Decision,
        Trained,
    )

    # Each task returns its typed result as ONE XCom (result.xcom(): plain JSON); a task that
    # reads one rebuilds it (Model.model_validate). multiple_outputs=False: Airflow would push
    # each key of a dict as well (~10x the execution-API requests and XCom rows per run).
    @task(pool="pixelfed_api", multiple_outputs=False, **NETWORK)
    def refresh_trending() -> dict[str, Any]:
        with final_errors():
            return flow.refresh_trending(run_context()).xcom()

    @task(multiple_outputs=False)
    def select_classes() -> dict[str, Any]:
        """Reads the newest trending run from storage (refresh_trending only comes first)."""
        params = get_current_context()["params"]
        with final_errors():
            return flow.select_classes(run_context(), params["add_tags"], params["remove_tags"],
                                       params.get("force_tags") or [], params.get("confirm_tags") or []).xcom()

    @task
    def class_names(selection: dict[str, Any]) -> list[str]:
        return ClassSelection.model_validate(selection).classes

    @task
    def labels_of(classes: list[str]) -> list[str]:
        """The classes, then the background label when background images are collected."""
        return flow.scrape_labels(run_context(), classes)

    @task(pool="pixelfed_api", map_index_template="{{ label }}", multiple_outputs=False, **NETWORK)
    def scrape(label: str, classes: list[str]) -> dict[str, Any]:
        with final_errors():
            return flow.scrape_class(run_context(), label, classes).xcom()

    @task(multiple_outputs=False)
    def assemble(classes: list[str], scraped: list[dict[str, Any]]) -> dict[str, Any]:
        with final_errors():
            return flow.assemble(run_context(), classes, [ClassSummary.model_validate(s) for s in scraped]).xcom()

    @task
    def kept_labels(dataset: dict[str, Any]) -> list[str]:
        """The labels the dataset holds: the classes minus those left out for too few images,
        then the background. Feature extraction maps over these."""
        return DatasetSummary.model_validate(dataset).labels

    @task(retries=0, multiple_outputs=False)
    def validate(dataset: dict[str, Any]) -> dict[str, Any]:
        with final_errors():
            return flow.validate(run_context(), DatasetSummary.model_validate(dataset).classes).xcom()

    @task(pool="gpu", queue=CONFIG.gpu_queue, map_index_template="{{ label }}", multiple_outputs=False)
    def extract_features(label: str, selection: dict[str, Any]) -> dict[str, Any]:
        with final_errors():
            return flow.extract_features(run_context(ClassSelection.model_validate(selection).backbone), label).xcom()

    @task(multiple_outputs=False)
    def train(selection: dict[str, Any]) -> dict[str, Any]:
        with final_errors():
            return flow.train(run_context(ClassSelection.model_validate(selection).backbone)).xcom()

    @task(multiple_outputs=False, **NETWORK)
    def register(trained: dict[str, Any]) -> dict[str, Any]:
        candidate = Trained.model_validate(trained)
        with final_errors():
            return flow.register(run_context(candidate.backbone), candidate).xcom()

    @task(outlets=[CHAMPION])
    def announce_champion(decision: dict[str, Any], approval: dict[str, Any]) -> None:
        gate = Decision.model_validate(decision)
        new = gate.new_champion or bool(approval.get("approved"))  # a person moved @champion
        if not new:
            why = f"v{gate.version} already is, nothing new was trained" if gate.already_champion else gate.reason
            raise AirflowSkipException(f"no new champion: {why}")
        get_current_context()["outlet_events"][CHAMPION].extra = {
            "version": gate.version, "test_accuracy": gate.test_accuracy}

    # The report states the approval's outcome, so it runs after it, through announce_champion: on
    # Reject, ApprovalOperator skips its direct downstream tasks whatever their trigger rule.
    # none_failed: it runs whether the announcement ran or was skipped (Reject, an unanswered
    # approval, no new champion), never after a failed task it reads.
    @task(multiple_outputs=False, trigger_rule=TriggerRule.NONE_FAILED)
    def report(selection: dict[str, Any], dataset: dict[str, Any], trained: dict[str, Any],
               decision: dict[str, Any]) -> dict[str, Any]:
        approval = get_current_context()["ti"].xcom_pull(task_ids="approve_promotion")
        return flow.report(ClassSelection.model_validate(selection), DatasetSummary.model_validate(dataset),
                           Trained.model_validate(trained), Decision.model_validate(decision),
                           Approval.model_validate(approval) if approval else None).xcom()

    selection = select_classes()
    refresh_trending() >> selection
    classes = class_names(selection)
    labels = labels_of(classes)
    dataset = assemble(classes, scrape.partial(classes=classes).expand(label=labels))
    validation = validate(dataset)
    on_timeout = ["OK"] if CONFIG.review_on_timeout == "go_on" else None
    reviewed = ReviewImages(
        task_id="review_images", subject="Review the new images before training",
        # Optional: the form marks a Param required (OK stays disabled while it is empty) unless
        # its type allows null; an empty answer is null or "" (no exclusions).
        params={"exclusions": Param(None, type=["null", "string"], format="multiline", title="Exclusions",
                                    description="Images to leave out, one per line: label:n or a sha256. "
                                    "Empty: none.")},
        defaults=on_timeout, response_timeout=timedelta(hours=CONFIG.review_timeout_hours), retries=0)
    extracted = extract_features.partial(selection=selection).expand(label=kept_labels(dataset))
    validation >> reviewed >> extracted
    validation >> extracted
    trained = train(selection)
    extracted >> trained
    decision = register(trained)
    approval = ApprovePromotion(
        task_id="approve_promotion", subject="Promote the challenger to @champion?",
        params={"note": Param(None, type=["null", "string"], title="Note",
                              description="Why (kept on the model version). Optional.")},
        response_timeout=timedelta(hours=CONFIG.review_timeout_hours), retries=0)
    decision >> approval
    announced = announce_champion(decision, approval.output)
    announced >> report(selection, dataset, trained, decision)

pixtag_retrain()
