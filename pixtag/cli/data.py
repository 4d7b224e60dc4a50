"""``pixtag scrape``, ``review``, ``describe`` and ``validate``: the dataset layer (:mod:`pixtag.data`).

One way to name a dataset: ``scrape`` writes it to ``--out DATASET``; every command that reads
one takes it as the optional positional ``DATASET`` (default: the settings' storage, where
``scrape`` writes without ``--out``). A dataset pixtag wrote records its class set
(``dataset.json``), so none of them needs ``--classes`` for it.
"""

from __future__ import annotations

import click

from pixtag.cli.app import echo_json, get_settings, instance_option, json_option
from pixtag.cli.options import classes_option, dataset_argument, dataset_of, no_progress_option


@click.command("scrape")
@classes_option
@click.option("--per-class", type=int, default=None, help="Images per class (default 1000).")
@click.option("--out", default=None, metavar="DATASET",
              help="Dataset folder or s3://bucket/prefix to write (default: PIXTAG_STORAGE).")
@instance_option
@no_progress_option
@json_option
@click.pass_context
def scrape_cmd(ctx: click.Context, classes: str | None, per_class: int | None, out: str | None,
               instance_url: str | None, no_progress: bool, as_json: bool) -> None:
    """Collect per-class images from the hashtag timelines into a dataset."""
    from pixtag.data.scrape import scrape

    settings = get_settings(ctx, classes=classes, per_class=per_class)
    summary = scrape(settings, settings.classes, settings.per_class, out,
                     instance_url=instance_url, progress=not no_progress)
    if as_json:
        echo_json(summary.to_dict())
        return
    click.echo(f"dataset: {summary.out}")
    for label, count in summary.counts.items():
        click.echo(f"  {label:>12}: {count} images")
    click.echo("dropped: " + ", ".join(f"{k} {v}" for k, v in summary.dropped.items()))
    if summary.left_out:
        from pixtag.data.scrape import left_out_line

        click.echo(left_out_line(summary.left_out))
    for label, info in summary.by_class.items():
        click.echo(f"  {label}: looked at {info['posts_seen']} posts, downloaded "
                   f"{info['downloaded']}, reused {info['reused']}, {info['seconds']} s")


@click.command("review")
@dataset_argument
@click.option("--exclude", "exclude", multiple=True, metavar="LABEL:N,...",
              help="Exclude images by contact-sheet index, e.g. cat:12,cat:40 (repeatable).")
@click.option("--exclude-sha", "exclude_sha", multiple=True, metavar="SHA256",
              help="Exclude images by sha256 (repeatable, comma-separated allowed).")
@click.option("--restore", multiple=True, metavar="LABEL:N|SHA256",
              help="Take images off the exclusions list again.")
@click.option("--out", default=None, metavar="DIR",
              help="Write the sheets here instead of the dataset's reports/review/.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def review_cmd(ctx: click.Context, dataset_uri: str | None, exclude: tuple[str, ...],
               exclude_sha: tuple[str, ...], restore: tuple[str, ...], out: str | None,
               as_json: bool) -> None:
    """Write per-class contact sheets of DATASET (folder or s3://...) and edit exclusions."""
    from pixtag.data.review import review

    settings = get_settings(ctx)
    result = review(dataset_of(settings, dataset_uri), settings, exclude=exclude,
                    exclude_sha=exclude_sha, restore=restore, out=out)
    if as_json:
        echo_json(result.to_dict())
        return
    for label, count in result.counts.items():
        click.echo(f"{label:>12}: {count['images']} images, {count['excluded']} excluded  "
                   f"{result.sheets[label]}")
    if result.added or result.restored:
        click.echo(f"exclusions: +{len(result.added)} -{len(result.restored)} "
                   f"({result.excluded_total} rows excluded now)")
    click.echo(f"contact sheets: {result.index}")


@click.command("describe")
@dataset_argument
@click.option("--out", default=None, metavar="DIR",
              help="Write figures and summary.json here (default: DATASET/reports/describe).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def describe_cmd(ctx: click.Context, dataset_uri: str | None, out: str | None, as_json: bool) -> None:
    """Descriptive figures (PNG) and a JSON summary of DATASET (folder or s3://...)."""
    from pixtag.data.describe import describe

    settings = get_settings(ctx)
    summary = describe(dataset_of(settings, dataset_uri), settings, out=out)
    if as_json:
        echo_json(summary)
        return
    click.echo(f"{summary['images']} images in {len(summary['classes'])} classes")
    for label, c in summary["classes"].items():
        click.echo(f"{label:>12}: {c['count']} images, aspect ratio mean "
                   f"{c['aspect_ratio']['mean']}, cropped {c['cropped_share']:.0%}")
    for name, uri in summary["figures"].items():
        click.echo(f"  {name}: {uri}")
    click.echo(f"summary: {summary['summary']}")


@click.command("validate")
@dataset_argument
@classes_option
@click.option("--min-per-class", type=int, default=None, help="Fewest images a class may have.")
@click.option("--balance-ratio", type=float, default=None,
              help="Largest class / smallest class, at most.")
@click.option("--docs", "docs_dir", default=None, metavar="DIR",
              help="Write Data Docs here (default: DATASET/reports/data_docs).")
@click.option("--suite-dir", type=click.Path(file_okay=False, exists=True), default=None,
              help="Folder of suite JSON files (default: the suites pixtag ships).")
@json_option
@click.pass_context
def validate_cmd(ctx: click.Context, dataset_uri: str | None, classes: str | None,
                 min_per_class: int | None, balance_ratio: float | None, docs_dir: str | None,
                 suite_dir: str | None, as_json: bool) -> None:
    """Validate DATASET (folder or s3://...) with Great Expectations; exit 1 if it fails."""
    from pixtag.data.validate import validate

    settings = get_settings(ctx, classes=classes, min_per_class=min_per_class,
                            balance_ratio=balance_ratio)
    # An explicit --classes wins over the class set the dataset records; the settings' come last.
    report = validate(dataset_of(settings, dataset_uri), settings, docs_dir=docs_dir,
                      classes=settings.classes if classes else None, suite_dir=suite_dir)
    if as_json:
        echo_json(report.to_dict())
    else:
        click.echo(report.summary())
    if not report.success:
        # SystemExit, not ctx.exit(1): click returns ctx.exit codes instead of exiting when
        # run with standalone_mode=False, as pixtag.cli.app does.
        raise SystemExit(1)
