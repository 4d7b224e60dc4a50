"""``pixtag-demo`` (also ``python -m pixtag_demo``): serve a demo world on 127.0.0.1 in the foreground.

The options are those ``pixtag demo-instance`` had: the photo folders, port, seed, token
(``PIXTAG_DEMO_TOKEN``), the instance's clock and the fault knobs; ``--bot-token``
(``PIXTAG_DEMO_BOT_TOKEN``) adds the bot account ``pixtag`` (``bot: true``) with that token. :func:`main` exits as the
``pixtag`` command does: expected failures print one line and exit 2, no traceback.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import click

from pixtag.core import logs
from pixtag.core.errors import PixtagError
from pixtag_demo.app import DEFAULT_PORT, DEFAULT_TOKEN, HOST, bind_socket, create_app, make_server
from pixtag_demo.errors import DemoError
from pixtag_demo.faults import Faults
from pixtag_demo.world.builder import build_world
from pixtag_demo.world.entities import DEFAULT_NOW
from pixtag_demo.world.model import World

DEFAULT_PHOTO_FOLDERS = ("photos5", "photos_more")  # under ../shared/data next to the repository


def default_photos() -> list[Path]:
    """The labelled photo folders: $PIXTAG_PHOTOS (several separated by ``os.pathsep``), else
    ../shared/data/photos5 and ../shared/data/photos_more next to the repository, those that
    exist (photos5 when none does, so that the error names it)."""
    env = os.environ.get("PIXTAG_PHOTOS")
    if env:
        return [Path(p) for p in env.split(os.pathsep) if p]
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    return [shared / d for d in DEFAULT_PHOTO_FOLDERS if (shared / d).is_dir()] or \
        [shared / DEFAULT_PHOTO_FOLDERS[0]]


def default_others() -> Path | None:
    """$PIXTAG_OTHERS (empty: none), else ../shared/data/others next to the repository when it
    exists: everyday photos of none of the classes, much of a real timeline."""
    env = os.environ.get("PIXTAG_OTHERS")
    if env is not None:
        return Path(env) if env else None
    path = Path(__file__).resolve().parents[2] / "shared" / "data" / "others"
    return path if path.is_dir() else None


def _parse_now(text: str | None) -> datetime:
    if not text:
        return DEFAULT_NOW
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise DemoError(f"--now must be an ISO 8601 time such as 2026-11-01T00:00:00Z, "
                        f"not {text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _token_hint(source: click.core.ParameterSource | None, token: str) -> str:
    if source == click.core.ParameterSource.ENVIRONMENT:
        return 'export PIXTAG_TOKEN="$PIXTAG_DEMO_TOKEN"   # the token is in PIXTAG_DEMO_TOKEN'
    if source == click.core.ParameterSource.COMMANDLINE:
        return "export PIXTAG_TOKEN=<the value you passed with --token>"
    return (f"export PIXTAG_TOKEN={token}   # the default demo token "
            "(set PIXTAG_DEMO_TOKEN or --token to change it)")


def _announce(world: World, url: str, token_hint: str) -> None:
    """What the foreground instance prints before it serves: where it is and how to use it."""
    click.echo(f"pixtag demo instance on {url}  (seed {world.seed}, {len(world.posts)} posts, "
               f"classes: {', '.join(world.classes)}; {len(world.other_images)} everyday "
               f"photos of other subjects)")
    click.echo("Use it with:")
    click.echo(f"  export PIXTAG_INSTANCE_URL={url} PIXTAG_ALLOW_PRIVATE_HOSTS={HOST}")
    click.echo(f"  {token_hint}")
    click.echo("Press Ctrl-C to stop.")


_rate = click.FloatRange(0.0, 1.0)


@click.command("pixtag-demo", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--photos", type=click.Path(file_okay=False, path_type=Path), multiple=True,
              help="Labelled photos CLASS/*.jpg; may be given several times, the classes are "
                   "those of all folders (default: $PIXTAG_PHOTOS, several joined by "
                   f"{os.pathsep!r}, or ../shared/data/photos5 and photos_more).")
@click.option("--others", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Everyday photos SUBJECT/*.jpg of none of the classes, served as most of the "
                   "timeline (default: $PIXTAG_OTHERS or ../shared/data/others when it exists).")
@click.option("--no-others", is_flag=True, help="Serve the labelled photos only.")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True,
              help="Port on 127.0.0.1 (0: any free port).")
@click.option("--seed", type=int, default=0, show_default=True, help="World seed.")
@click.option("--token", envvar="PIXTAG_DEMO_TOKEN", default=DEFAULT_TOKEN, show_envvar=True,
              help="Bearer token of the demo user.")
@click.option("--bot-token", envvar="PIXTAG_DEMO_BOT_TOKEN", default=None, show_envvar=True,
              help="Make the bot account 'pixtag' (bot: true) whose read+write token this is.")
@click.option("--now", "now_text", default=None, metavar="ISO",
              help="The instance's clock (default 2026-11-01T00:00:00Z, fixed).")
@click.option("--rate-429", type=_rate, default=0.0, help="Share of requests answered 429.")
@click.option("--retry-after", type=click.IntRange(0), default=1, show_default=True,
              help="Retry-After sent with a 429.")
@click.option("--rate-5xx", type=_rate, default=0.0, help="Share answered 500/502/503.")
@click.option("--slow-rate", type=_rate, default=0.0, help="Share of slow responses.")
@click.option("--slow-seconds", type=click.FloatRange(0, 120), default=1.0, show_default=True)
@click.option("--truncate-media-rate", type=_rate, default=0.0, help="Share of cut media bodies.")
@click.option("--corrupt-media-rate", type=_rate, default=0.0, help="Share of garbled media.")
@click.option("--fault-seed", type=int, default=0, show_default=True)
@click.pass_context
def demo_cmd(ctx: click.Context, photos: tuple[Path, ...], others: Path | None,
             no_others: bool, port: int, seed: int, token: str, bot_token: str | None,
             now_text: str | None, rate_429: float, retry_after: int, rate_5xx: float,
             slow_rate: float, slow_seconds: float, truncate_media_rate: float,
             corrupt_media_rate: float, fault_seed: int) -> None:
    """Serve a local Pixelfed-compatible instance built from a folder of labelled photos."""
    if not token:
        raise DemoError("the token must not be empty")
    if bot_token is not None and (not bot_token or bot_token == token):
        raise DemoError("--bot-token must not be empty nor the demo user's token")
    faults = Faults(seed=fault_seed, rate_429=rate_429, retry_after=retry_after,
                    rate_5xx=rate_5xx, slow_rate=slow_rate, slow_seconds=slow_seconds,
                    truncate_media_rate=truncate_media_rate,
                    corrupt_media_rate=corrupt_media_rate)
    now = _parse_now(now_text)
    sock = bind_socket(port)  # fail fast when the port is taken
    try:
        others = None if no_others else (others or default_others())
        if others is not None and not others.is_dir():
            raise DemoError(f"--others {others} is not a folder (expected SUBJECT/*.jpg)")
        world = build_world(list(photos) or default_photos(), seed, now, others)
        _announce(world, f"http://{HOST}:{sock.getsockname()[1]}",
                  _token_hint(ctx.get_parameter_source("token"), token))
        make_server(create_app(world, token, faults, bot_token)).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after its graceful shutdown
        pass
    finally:
        sock.close()
    click.echo("demo instance stopped")


def main(argv: list[str] | None = None) -> int:
    """Entry point: the exit status (expected failures print one clear line and give 2)."""
    logs.setup()
    try:
        code = demo_cmd.main(args=argv, prog_name="pixtag-demo", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except PixtagError as exc:
        click.echo(f"pixtag-demo: error: {logs.redact(str(exc))}", err=True)
        return 2
    return code if isinstance(code, int) else 0
