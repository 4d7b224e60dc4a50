"""Option helpers shared by the sub-commands (click only: nothing below pixtag.cli sees them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from pixtag.core.config import Settings


def dataset_argument(func: Callable[..., Any]) -> Callable[..., Any]:
    """The dataset a command reads, one way for every command: an optional positional
    ``DATASET`` (a folder or ``s3://bucket/prefix``; default: the settings' ``storage``,
    where ``pixtag scrape`` writes it without ``--out``)."""
    return click.argument("dataset_uri", metavar="[DATASET]", required=False, default=None)(func)


def dataset_of(settings: Settings, dataset_uri: str | None) -> str:
    """The dataset to read: the one named, else the settings' storage root."""
    return dataset_uri or settings.storage  # = pixtag.data.scrape.default_dataset_uri


def classes_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--classes", default=None, metavar="A,B,...",
        help="Comma-separated class set (default: the one the dataset records, else settings).",
    )(func)


def no_progress_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--no-progress", is_flag=True, help="No progress bars.")(func)
