"""The ``pixtag`` command: every sub-command, on top of everything else (nothing below imports it)."""

from pixtag.cli.app import cli, main

__all__ = ["cli", "main"]
