"""``pixtag local``: the embedded default stack on one machine, for ``make run``.

It starts, each in its own process group so that stopping leaves nothing behind:

* an MLflow tracking server (SQLite backend, local artifacts served through the server);
* the local Pixelfed-compatible instance on the photos folder, unless a real instance is
  configured (``PIXTAG_INSTANCE_URL`` + a token);
* Airflow 3 (``airflow standalone``: SQLite, LocalExecutor, small parallelism), with pools and
  the Pixelfed connection created from ``airflow/*.json``;
* ``pixtag bot`` on the instance's bot account (the local instance's ``pixtag``; a configured
  instance's when ``PIXTAG_BOT_TOKEN`` or ``pixtag auth --bot`` gives its token): it answers
  mentions with the champion from the first promotion on;

then triggers ``pixtag_retrain`` through Airflow's REST API, follows it to the end and prints
what a user wants to see. Nothing here imports Airflow: it drives the ``airflow`` CLI and API.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pixtag.core import logs
from pixtag.core.config import Settings
from pixtag.stack.airflow import (
    DAG_ID,
    SUMMARY_TASK,
    AirflowAPI,
    Stack,
    admin_password,
    airflow_env,
    pixtag_environment,
    setup_airflow,
)
from pixtag.stack.process import (
    Layout,
    Ports,
    StackError,
    bin_path,
    choose_instance,
    echo,
    find_project,
    free_port,
    mlflow_argv,
    start_bot,
    start_demo,
    start_process,
    stop_all,
    wait_http,
)

log = logs.get_logger(__name__)


@contextlib.contextmanager
def stack(settings: Settings, *, photos: Path | None = None, ports: Ports | None = None,
          layout: Layout | None = None, echo: Any = echo) -> Iterator[Stack]:
    """Start MLflow, the local instance (unless a real one is configured) and Airflow; stop
    every process group on exit, whatever happens."""
    layout = layout or Layout(find_project())
    stop_all(layout)  # leftovers of an interrupted earlier run
    wanted = ports or Ports()
    ports = Ports(free_port(wanted.airflow), free_port(wanted.mlflow), free_port(wanted.demo))
    instance = choose_instance(settings, layout, photos, ports.demo)
    demo, instance_url, token = instance.demo, instance.url, instance.token
    env = airflow_env(layout, ports.airflow, pixtag_environment(settings, layout, ports, instance_url, demo))
    try:
        echo(f"pixtag: starting MLflow on :{ports.mlflow}" + (f", the local instance on :{ports.demo}" if demo else "")
             + f" and Airflow on :{ports.airflow} (logs in {layout.run_dir})")
        start_process(layout, "mlflow", mlflow_argv(layout, ports.mlflow),
                      {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
        start_demo(layout, instance, ports.demo)
        setup_airflow(layout, env, instance_url, token)
        start_process(layout, "airflow", [bin_path("airflow"), "standalone"], env)
        wait_http(f"http://127.0.0.1:{ports.mlflow}/health", 120, "mlflow", layout)
        if demo:
            wait_http(f"{instance_url}/api/v1/instance", 60, "demo-instance", layout)
        bot = start_bot(layout, instance, pixtag_environment(settings, layout, ports, instance_url, demo))
        wait_http(f"http://127.0.0.1:{ports.airflow}/api/v2/monitor/health", 240, "airflow", layout)
        api = AirflowAPI(f"http://127.0.0.1:{ports.airflow}", "admin", admin_password(layout))
        api.wait_for_dag(DAG_ID, 180)
        yield Stack(layout, ports, instance_url, demo, api, bot=bot)
    finally:
        stopped = stop_all(layout)
        if stopped:
            echo(f"pixtag: stopped {', '.join(stopped)}")


def run_stack(settings: Settings, *, photos: Path | None, ports: Ports, conf: dict[str, Any],
              keep: bool | None, timeout: float, echo: Any = echo,
              distributed: bool = False) -> dict[str, Any]:
    """Start everything, run the DAG once, print the outcome; stop unless ``keep``.

    ``distributed``: the engines of docker-compose.yaml instead (:mod:`pixtag.stack.cluster`).
    """
    if distributed:
        from pixtag.stack.cluster import ClusterPorts, cluster

        starter: Any = cluster(settings, photos=photos, echo=echo,
                               ports=ClusterPorts(ports.airflow, ports.mlflow, ports.demo))
    else:
        starter = stack(settings, photos=photos, ports=ports, echo=echo)
    with starter as running:
        api = running.api
        run_id = api.trigger(DAG_ID, conf)
        echo(f"pixtag: triggered {DAG_ID} run {run_id}; following it (Airflow UI: {running.airflow_url})")
        state = api.follow(DAG_ID, run_id, timeout, echo)
        summary = {"state": state, "run_id": run_id, "airflow_url": running.airflow_url,
                   "mlflow_url": running.mlflow_url, "instance": running.instance_url, "demo": running.demo,
                   "bot": running.bot}
        try:
            summary["report"] = api.xcom(DAG_ID, run_id, SUMMARY_TASK)
        except StackError as exc:
            summary["report"] = None
            summary["report_error"] = str(exc)
        print_summary(summary, echo)
        if state != "success":
            failed = [t["task_id"] for t in api.task_instances(DAG_ID, run_id) if t.get("state") == "failed"]
            echo(api.failure_logs(DAG_ID, run_id))
            raise StackError(f"{DAG_ID} run {run_id} ended {state} (failed: {', '.join(failed) or '?'}); "
                             f"task logs in the Airflow UI or {running.layout.airflow_home / 'logs'}")
        if keep is None:
            keep = sys.stdin.isatty() and sys.stdout.isatty()
        if keep:
            echo("pixtag: the UIs stay up; press Ctrl-C to stop everything.")
            _wait_for_interrupt()
        return summary


def _wait_for_interrupt() -> None:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


def model_outcome(decision: dict[str, Any], approval: dict[str, Any]) -> str:
    """What became of the candidate, in the summary's words: the gate's decision, or with
    ``promotion: human`` the person's answer (who, and their note) or that nobody answered."""
    outcome = approval.get("outcome")
    if outcome == "approved":
        return f"PROMOTED to champion by {approval.get('by')}" + (f" (note: {approval['note']})"
                                                                 if approval.get("note") else "")
    if outcome == "rejected":
        return f"rejected by {approval.get('by')}: {approval.get('note') or '(no reason given)'}"
    if outcome == "timed out":
        return "challenger, awaiting approval (nobody answered in Airflow in time; move @champion to it in MLflow)"
    return f"{'PROMOTED to champion' if decision.get('promoted') else 'not promoted'} ({decision.get('reason', '')})"


def print_summary(summary: dict[str, Any], echo: Any) -> None:
    report = summary.get("report") or {}
    echo("")
    echo(f"pixtag_retrain: {summary['state']}")
    if report:
        echo(f"  classes:        {', '.join(report.get('classes', []))}")
        counts = report.get("counts", {})
        if counts:
            echo("  images:         " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        if report.get("left_out"):  # classes too small to train this run
            echo("  left out:       " + ", ".join(f"{k} ({v})" for k, v in report["left_out"].items()))
        for word, note in (report.get("notes") or {}).items():  # made room for an added tag, WordNet lacks it
            echo(f"  note:           {word}: {note}")
        if report.get("dropped"):
            echo("  dropped:        " + ", ".join(f"{k} {v}" for k, v in report["dropped"].items()))
        if report.get("backbone"):
            echo(f"  backbone:       {report['backbone']}")
        if report.get("cv_mean") is not None:
            echo(f"  CV accuracy:    {report['cv_mean']:.3f} ± {report.get('cv_std', 0):.3f} "
                 f"({report.get('cv_folds', '?')} folds)")
        if report.get("test_accuracy") is not None:
            echo(f"  test accuracy:  {report['test_accuracy']:.3f}")
        if report.get("false_suggestion_rate") is not None:
            echo(f"  false suggestions: {report['false_suggestion_rate']:.3f} of held-out background "
                 f"images got a tag (abstained on {report.get('abstention_rate') or 0:.3f} of class images)")
        elif report.get("test_accuracy") is not None:
            echo("  false suggestions: unmeasured (no background images: set background > 0)")
        for line in suggestion_lines(report):
            echo(line)
        decision = report.get("decision") or {}
        if decision and report.get("reused") and decision.get("already_champion"):
            echo(f"  model:          {decision.get('model_uri', '')} version {decision.get('version', '?')}: "
                 "unchanged champion (same images, backbone and settings: nothing new to train)")
        elif decision:
            echo(f"  model:          {decision.get('model_uri', '')} version {decision.get('version', '?')}: "
                 f"{model_outcome(decision, report.get('approval') or {})}")
    echo(f"  Airflow UI:     {summary['airflow_url']}  (user admin, password in var/airflow/"
         "simple_auth_manager_passwords.json.generated)")
    echo(f"  MLflow UI:      {summary['mlflow_url']}")
    echo(f"  instance:       {summary['instance']}{'  (local demo instance)' if summary['demo'] else ''}")
    if summary.get("bot"):
        echo("  bot:            @pixtag answers mentions on the instance with the champion (log var/run/bot.log)")


def _figure(value: Any, fmt: str = ".3f") -> str:
    return "n/a" if value is None else format(value, fmt)


def suggestion_lines(report: dict[str, Any]) -> list[str]:
    """The suggestions' figures on the held-out test part (one line) and a compact per-class
    table: images, threshold, precision and recall of each tag at its threshold."""
    if report.get("coverage") is None:
        return []
    k = report.get("top_k") or "k"
    lines = [f"  suggestions:    coverage {_figure(report['coverage'])} of class images, precision "
             f"{_figure(report.get('suggestion_precision'))}, precision@{k} {_figure(report.get('precision_at_k'))}, "
             f"recall@{k} {_figure(report.get('recall_at_k'))}"
             + ("" if report.get("precision_at_share") is None else
                f", precision {_figure(report['precision_at_share'])} at "
                f"{report.get('in_class_share') or 0.15:.0%} in-class posts")]
    tags = report.get("per_tag") or {}
    if tags:
        width = max(8, *map(len, tags))
        counts = report.get("counts") or {}
        lines.append(f"  per class:      {'class':<{width}} images  test  threshold  precision  recall")
        for tag, m in tags.items():
            lines.append(f"                  {tag:<{width}} {counts.get(tag, 0):>6} {m.get('support', 0):>5}  "
                         f"{_figure(m.get('threshold')):>9}  {_figure(m.get('precision')):>9}  "
                         f"{_figure(m.get('recall')):>6}")
    return lines
