"""``pixtag local run`` / ``pixtag local stop``: the embedded default stack (:mod:`pixtag.stack`)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from pixtag.cli.app import echo_json, get_settings


@click.group("local")
def local_cmd() -> None:
    """Run pixtag's embedded default stack (Airflow + MLflow + local instance) on this machine."""


@local_cmd.command("run")
@click.option("--photos", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Photos (CLASS/*.jpg) for the local instance (default: $PIXTAG_PHOTOS, or "
                   "../shared/data/photos5 and ../shared/data/photos_more).")
@click.option("--conf", "conf_json", default="{}", help="JSON conf for the DAG run (its Params).")
@click.option("--keep/--no-keep", default=None, help="Keep the UIs up after the run (default: if interactive).")
@click.option("--timeout", type=float, default=3600, help="Seconds to wait for the run.")
@click.option("--airflow-port", type=int, default=8080)
@click.option("--mlflow-port", type=int, default=5000)
@click.option("--demo-port", type=int, default=8765)
@click.option("--distributed", is_flag=True,
              help="Run on PostgreSQL, Redis, S3 and Celery workers (default + gpu queue), as deployed.")
@click.option("--json", "as_json", is_flag=True, help="Also print the summary as JSON.")
@click.pass_context
def run_cmd(ctx: click.Context, photos: Path | None, conf_json: str, keep: bool | None, timeout: float,
            airflow_port: int, mlflow_port: int, demo_port: int, distributed: bool, as_json: bool) -> None:
    """Start the stack, trigger pixtag_retrain, follow it and print the outcome."""
    from pixtag.stack.local import run_stack
    from pixtag.stack.process import Ports

    settings = get_settings(ctx)
    try:
        conf = json.loads(conf_json)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"--conf is not JSON: {exc}") from None
    summary = run_stack(settings, photos=photos, ports=Ports(airflow_port, mlflow_port, demo_port),
                        conf=conf, keep=keep, timeout=timeout, echo=click.echo, distributed=distributed)
    if as_json:
        echo_json(summary)


@local_cmd.command("stop")
def stop_cmd() -> None:
    """Stop whatever an interrupted `pixtag local run` left running."""
    from pixtag.stack.cluster import stop_cluster
    from pixtag.stack.process import Layout, find_project, stop_all

    layout = Layout(find_project())
    stopped = stop_all(layout) + stop_cluster(layout)
    click.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
