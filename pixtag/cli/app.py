"""The ``pixtag`` command: one sub-command per stage, in the ``pixtag.cli`` module of its layer
(``tags``, ``data``, ``model``, ``auth``, ``local``, ``bot``); each parses options, calls the layer's
domain function and prints. Nothing below ``pixtag.cli`` imports click or this package.

Sub-commands are imported lazily (``COMMANDS`` maps a name to ``module:attribute``), so
``pixtag normalize`` never pays for importing torch or MLflow. The local demo instance is not
here: it is its own program, ``pixtag-demo`` (package ``pixtag_demo``), never imported by pixtag.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable
from typing import Any

import click

from pixtag.core import logs
from pixtag.core.config import Settings, load_settings
from pixtag.core.errors import PixtagError

COMMANDS: dict[str, str] = {
    "auth": "pixtag.cli.auth:auth_cmd",
    "setup-nltk": "pixtag.cli.tags:setup_nltk_cmd",
    "normalize": "pixtag.cli.tags:normalize_cmd",
    "trending": "pixtag.cli.tags:trending_cmd",
    "classes": "pixtag.cli.tags:classes_cmd",
    "drift": "pixtag.cli.tags:drift_cmd",
    "scrape": "pixtag.cli.data:scrape_cmd",
    "review": "pixtag.cli.data:review_cmd",
    "describe": "pixtag.cli.data:describe_cmd",
    "validate": "pixtag.cli.data:validate_cmd",
    "features": "pixtag.cli.model:features_cmd",
    "train": "pixtag.cli.model:train_cmd",
    "register": "pixtag.cli.model:register_cmd",
    "suggest": "pixtag.cli.model:suggest_cmd",
    "serve": "pixtag.cli.model:serve_cmd",
    "evaluate": "pixtag.cli.model:evaluate_cmd",
    "local": "pixtag.cli.local:local_cmd",
    "bot": "pixtag.cli.bot:bot_cmd",
}


class LazyGroup(click.Group):
    """A group whose sub-commands are imported only when used (or listed)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                return None  # listed but not built yet
            raise
        return getattr(module, attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              envvar="PIXTAG_CONFIG", help="YAML settings file (default ./pixtag.yaml if present).")
@click.version_option(package_name="pixtag")
@click.pass_context
def cli(ctx: click.Context, config_file: str | None) -> None:
    """pixtag: keep a photo hashtag-suggestion model fresh for a Pixelfed instance."""
    ctx.obj = {"config_file": config_file}
    logs.setup()


def get_settings(ctx: click.Context, **overrides: Any) -> Settings:
    """Settings for this invocation: the --config file, env, plus command-line overrides."""
    obj = ctx.find_root().obj or {}
    settings = load_settings(obj.get("config_file"), **overrides)
    logs.setup(settings.log_level)
    return settings


def instance_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--instance URL`` (default: PIXTAG_INSTANCE_URL). The token is never a flag."""
    return click.option(
        "--instance", "instance_url", default=None, metavar="URL",
        help="Pixelfed instance (default: settings/PIXTAG_INSTANCE_URL; token from PIXTAG_TOKEN).",
    )(func)


def _json_flag(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    logs.quiet_progress(value)  # JSON is for programs: no progress bars beside it
    return value


def json_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, callback=_json_flag, help="Print JSON.")(func)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def main(argv: list[str] | None = None) -> None:
    """Entry point: expected failures print one clear line and exit 2, no traceback."""
    try:
        code = cli.main(args=argv, prog_name="pixtag", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except PixtagError as exc:
        click.echo(f"pixtag: error: {logs.redact(str(exc))}", err=True)
        sys.exit(2)
    # In non-standalone mode click returns ctx.exit(N)'s code instead of exiting.
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
