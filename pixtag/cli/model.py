"""``pixtag features``, ``train``, ``register``, ``suggest``, ``serve`` and ``evaluate``: the model
layer (:mod:`pixtag.model`). Torch and MLflow are imported inside the commands, only when run."""

from __future__ import annotations

import click

from pixtag.cli.app import echo_json, get_settings, json_option
from pixtag.cli.options import dataset_argument


@click.command("features")
@dataset_argument
@click.option("--label", "labels", multiple=True, help="Only this class (repeatable).")
@click.option("--backbone", default=None, help="timm model name, or auto.")
@click.option("--batch-size", type=int, default=None)
@json_option
@click.pass_context
def features_cmd(ctx: click.Context, dataset_uri: str | None, labels: tuple[str, ...],
                 backbone: str | None, batch_size: int | None, as_json: bool) -> None:
    """Compute and cache backbone features of the images of DATASET (default: settings storage)."""
    from pixtag.model.features.compute import features

    settings = get_settings(ctx, backbone=backbone, storage=dataset_uri, batch_size=batch_size)
    summary = features(settings, labels=list(labels) or None)
    if as_json:
        echo_json(summary)
    else:
        click.echo(f"{summary['backbone']}: {summary['images']} images, {summary['computed']} "
                   f"computed, {summary['cached']} cached in {summary['seconds']}s "
                   f"({summary['device']}) -> {summary['storage']}")


@click.command("train")
@dataset_argument
@click.option("--backbone", default=None, help="timm model name, or auto.")
@click.option("--compare", "compare_with", default=None, metavar="A,B[,...]",
              help="Compare backbones on the same folds (Mann-Whitney U and a paired test); registers nothing.")
@click.option("--register/--no-register", default=True,
              help="Register the candidate and apply the promotion gate (default: yes).")
@click.option("--force", is_flag=True, help="Train even if a candidate with the same images, backbone "
              "and settings exists (by default it is reused).")
@json_option
@click.pass_context
def train_cmd(ctx: click.Context, dataset_uri: str | None, backbone: str | None, compare_with: str | None,
              register: bool, force: bool, as_json: bool) -> None:
    """Train, evaluate and log a candidate model on DATASET (and register it through the gate)."""
    from pixtag.model.training.train import compare, open_set_line, train

    settings = get_settings(ctx, backbone=backbone, storage=dataset_uri)
    if compare_with:
        result = compare(settings, [b.strip() for b in compare_with.split(",") if b.strip()])
        if as_json:
            echo_json(result)
            return
        for name, res in result["backbones"].items():
            click.echo(f"{name}: CV {res['cv_mean']:.4f} (var {res['cv_var']:.6f}), "
                       f"test {res['test_accuracy']:.4f}")
        for t in result["mann_whitney"]:
            click.echo(f"Mann-Whitney U {t['a']} vs {t['b']}: U={t['u']:.1f} p={t['p']:.4f}")
        for t in result["paired"]:
            click.echo(f"paired (Wilcoxon signed-rank) {t['a']} vs {t['b']}: W={t['w']:.1f} p={t['p']:.4f}")
        for note in result["notes"]:
            click.echo(f"note: {note}")
        click.echo(f"run {result['run_id']}")
        return
    result = train(settings, reuse=not force)
    if result["reused"] and not as_json:
        click.echo(f"reusing run {result['run_id']}: same images, backbone and settings (--force trains again)")
    if register:
        from pixtag.model.promotion.register import register as register_run

        result["registry"] = register_run(settings, result["run_id"])
    if as_json:
        echo_json({k: v for k, v in result.items() if k != "confusion"})
        return
    click.echo(f"{result['backbone']}: CV {result['cv_mean']:.4f} (var {result['cv_var']:.6f}), "
               f"test {result['test_accuracy']:.4f} on {result['test_images']} images "
               f"(run {result['run_id']})")
    click.echo(open_set_line(result))
    if register:
        click.echo(result["registry"]["message"])


@click.command("register")
@click.argument("run_id")
@json_option
@click.pass_context
def register_cmd(ctx: click.Context, run_id: str, as_json: bool) -> None:
    """Register a training run's model and apply the promotion gate."""
    from pixtag.model.promotion.register import register

    result = register(get_settings(ctx), run_id)
    if as_json:
        echo_json(result)
    else:
        click.echo(result["message"])


@click.command("suggest")
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--model", "model_uri", default=None, help="Model URI (default models:/NAME@champion).")
@click.option("--threshold", type=float, default=None, help="Smallest probability suggested.")
@click.option("--top-k", type=int, default=None, help="Most tags per image.")
@json_option
@click.pass_context
def suggest_cmd(ctx: click.Context, images: tuple[str, ...], model_uri: str | None,
                threshold: float | None, top_k: int | None, as_json: bool) -> None:
    """Suggest hashtags for image files."""
    from pixtag.model.serving.suggest import suggest

    results = suggest(get_settings(ctx), list(images), model_uri, threshold=threshold, top_k=top_k)
    if as_json:
        echo_json(results)
        return
    for r in results:
        if "error" in r:
            click.echo(f"{r['image']}: error: {r['error']}")
        elif r["no_confident_tag"]:
            click.echo(f"{r['image']}: no confident tag")
        else:
            tags = " ".join(f"#{t['tag']} ({t['probability']:.2f})" for t in r["tags"])
            click.echo(f"{r['image']}: {tags}")


@click.command("serve")
@click.option("--model", "model_uri", default=None, help="Model URI (default models:/NAME@champion).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("-p", "--port", type=int, default=5001, show_default=True)
@click.pass_context
def serve_cmd(ctx: click.Context, model_uri: str | None, host: str, port: int) -> None:
    """Serve the champion over HTTP (mlflow models serve, from this environment)."""
    import os

    from pixtag.model.serving.suggest import serve_command

    args, env = serve_command(get_settings(ctx), model_uri, host, port)
    os.execve(args[0], args, env)


@click.command("evaluate")
@click.option("--photos", required=True, type=click.Path(file_okay=False, exists=True),
              help="Folder laid out CLASS/*.jpg.")
@click.option("--others", default=None, type=click.Path(file_okay=False, exists=True),
              help="Folder of photos of none of the classes (any sub-folders): the false-suggestion rate.")
@click.option("--model", "model_uri", default=None, help="Model URI (default models:/NAME@champion).")
@json_option
@click.pass_context
def evaluate_cmd(ctx: click.Context, photos: str, others: str | None, model_uri: str | None,
                 as_json: bool) -> None:
    """Score a model on a labelled folder of photos (and on photos of none of its classes)."""
    from pixtag.model.serving.evaluate import evaluate

    report = evaluate(get_settings(ctx), photos, model_uri, others)
    if as_json:
        echo_json(report)
        return
    def figure(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.4f}"

    click.echo(f"{report['model']}: accuracy {report['accuracy']:.4f} on {report['images']} "
               f"images, coverage {report['coverage']:.4f}, precision of suggestions "
               f"{figure(report['suggestion_precision'])}, precision@{report['top_k']} {report['precision_at_k']:.4f}, "
               f"recall@{report['top_k']} {report['recall_at_k']:.4f}")
    if "false_suggestion_rate" in report:
        click.echo(f"  false suggestions on {report['others_images']} photos of other subjects: "
                   f"{report['false_suggestion_rate']:.4f}; precision at {report['in_class_share']:.0%} "
                   f"in-class posts: {figure(report['precision_at_share'])}")
    tags = report.get("per_tag") or {}
    for cls, m in report["per_class"].items():
        threshold = (tags.get(cls) or {}).get("threshold")
        click.echo(f"  {cls:>12}: recall {m['recall']:.3f} precision {m['precision']:.3f} "
                   f"abstained {m['abstention_rate']:.3f} (n={m['n']})"
                   + ("" if threshold is None else f", threshold {threshold:.3f}"))
