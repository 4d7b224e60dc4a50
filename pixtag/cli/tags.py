"""``pixtag normalize``, ``trending``, ``classes``, ``drift`` and ``setup-nltk``: the hashtag layer
(:mod:`pixtag.tags`). Each command parses its options, calls the domain function and prints."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pixtag.cli.app import echo_json, get_settings, instance_option, json_option
from pixtag.tags.nlp import WORDNET_SOURCE  # light: the NLTK data is read only when used

if TYPE_CHECKING:
    from pixtag.tags.trending import Selection


def _plots_dir(plots: Path | None) -> Path | None:
    if plots is not None:
        plots.mkdir(parents=True, exist_ok=True)
    return plots


@click.command("normalize")
@click.argument("tags", nargs=-1, required=True)
@json_option
def normalize_cmd(tags: tuple[str, ...], as_json: bool) -> None:
    """Print the normalised words of each hashtag."""
    from pixtag.tags.normalize import normalize

    result = {tag: normalize(tag) for tag in tags}
    if as_json:
        echo_json(result)
        return
    for tag, words in result.items():
        click.echo(f"{tag}\t{' '.join(words) if words else '(no words)'}")


def _echo_top(title: str, counts: Mapping[str, int], n: int) -> None:
    click.echo(title)
    for rank, (tag, count) in enumerate(list(counts.items())[:n], start=1):
        click.echo(f"{rank:4d}. {tag:<32} {count}")


@click.command("trending")
@click.option("--posts", type=click.IntRange(min=1), default=None,
              help="Recent public posts to sample (default: settings trending_posts).")
@click.option("--top", type=click.IntRange(min=1), default=20, show_default=True,
              help="Tags and words to print.")
@click.option("--plots", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write tags_before_after.png and tags_top100.png here.")
@instance_option
@json_option
@click.pass_context
def trending_cmd(ctx: click.Context, posts: int | None, top: int, plots: Path | None,
                 instance_url: str | None, as_json: bool) -> None:
    """Sample recent public posts, count their hashtags and record the run."""
    from pixtag.tags.figures import plot_before_after, plot_top_tags
    from pixtag.tags.trending import _open_storage, latest_run, top_changes, trending

    settings = get_settings(ctx, instance_url=instance_url)
    counts = trending(settings, posts=posts)
    previous = latest_run(_open_storage(settings), before=counts.extra["key"])
    changes = top_changes(previous, counts, top) if previous else None
    if (plots := _plots_dir(plots)) is not None:
        plot_before_after(counts, plots / "tags_before_after.png")
        plot_top_tags(counts, plots / "tags_top100.png")
    if as_json:
        echo_json({**counts.to_dict(), "drift": changes})
        return
    click.echo(f"sampled {counts.posts} posts from {counts.instance} "
               f"({counts.tagged_posts} with hashtags); saved {counts.extra['key']}")
    _echo_top(f"top {top} hashtags (raw):", counts.raw, top)
    _echo_top(f"top {top} words (normalised):", counts.words, top)
    if changes is not None:
        click.echo(f"since {previous.time}: entered top {top}: "
                   f"{', '.join(changes['entered']) or '-'}; left: {', '.join(changes['left']) or '-'}")


def _echo_selection(selection: Selection) -> None:
    click.echo(f"classes ({len(selection.classes)}): {', '.join(selection.classes)}")
    click.echo("rejected:")
    for word, reason in selection.rejected.items():
        click.echo(f"  {word:<24} {reason}")
    if selection.notes:
        click.echo("notes:")
        for word, note in selection.notes.items():
            click.echo(f"  {word:<24} {note}")
    click.echo("Wu-Palmer similarity:")
    width = max([len(c) for c in selection.classes] + [6])
    click.echo(" " * width + "".join(f" {c[:6]:>6}" for c in selection.classes))
    for label, row in zip(selection.classes, selection.wup, strict=True):
        cells = "".join("      -" if v is None else f" {v:6.3f}" for v in row)
        click.echo(f"{label:<{width}}{cells}")


@click.command("classes")
@click.option("--auto", is_flag=True, help="The classes a run would train: trending tags, the stored vocabulary.")
@click.option("--max", "max_classes", type=click.IntRange(min=1), default=None,
              help="Most classes (default: settings max_classes, 20).")
@click.option("--counts", "counts_file", type=click.Path(exists=True, dir_okay=False,
              path_type=Path), default=None,
              help="JSON object hashtag -> count, instead of the last trending run.")
@click.option("--plots", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write classes_wup.png here.")
@json_option
@click.pass_context
def classes_cmd(ctx: click.Context, auto: bool, max_classes: int | None,
                counts_file: Path | None, plots: Path | None, as_json: bool) -> None:
    """Print the configured classes, or with --auto the classes a run would train.

    --auto takes the DAG's own path (pixtag.tags.select.choose_classes): the newest trending
    run (or --counts), the settings and the vocabulary people changed through the trigger
    form (added, removed, forced and confirmed tags, kept in the settings' storage)."""
    settings = get_settings(ctx)
    if not auto:
        configured = list(dict.fromkeys([*settings.classes, *settings.add_tags]))
        if as_json:
            echo_json({"classes": configured})
        else:
            click.echo("\n".join(configured) if configured else
                       "no classes configured (set classes/add_tags, or use --auto)")
        return
    from pixtag.core.storage import open_storage
    from pixtag.tags.figures import plot_wup
    from pixtag.tags.select import choose_classes
    from pixtag.tags.trending import read_counts_file, word_counts

    if max_classes is not None:
        settings = settings.model_copy(update={"max_classes": max_classes})
    store = open_storage(settings.storage, settings.s3_endpoint_url)
    counts = word_counts(read_counts_file(counts_file)) if counts_file is not None else None
    selection = choose_classes(settings, store, counts)
    if (plots := _plots_dir(plots)) is not None:
        plot_wup(selection, plots / "classes_wup.png")
    if as_json:
        echo_json(selection.to_dict())
    else:
        _echo_selection(selection)


@click.command("drift")
@click.option("--top", type=int, default=20, show_default=True, help="Compare the top N words.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def drift_cmd(ctx: click.Context, top: int, as_json: bool) -> None:
    """Report how the hashtags moved between the two newest `pixtag trending` runs."""
    from pixtag.tags.drift import describe, drift

    report = drift(get_settings(ctx), top)
    if report is None:
        raise click.ClickException("need two trending runs (run `pixtag trending` twice)")
    if as_json:
        echo_json(report)
    else:
        click.echo(describe(report))


@click.command("setup-nltk")
@click.argument("target", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--source", type=click.Path(file_okay=False, path_type=Path),
              default=WORDNET_SOURCE, show_default=True,
              help="WordNet 3.0 database (Debian: wordnet-base, wordnet-sense-index).")
@click.option("--force", is_flag=True, help="Reinstall even if up to date.")
def setup_nltk_cmd(target: Path | None, source: Path, force: bool) -> None:
    """Install WordNet and the English stopwords for NLTK (default target: sys.prefix/nltk_data)."""
    from pixtag.tags.nlp import setup_nltk

    result = setup_nltk(target, source, force=force)
    click.echo(
        f"NLTK data in {result.target}: wordnet {result.wordnet}, stopwords {result.stopwords} "
        f"({result.seconds:.2f} s)"
    )
