"""``pixtag bot``: the instance's bot account answers mentions with hashtag suggestions (:mod:`pixtag.bot`)."""

from __future__ import annotations

import signal
import threading
from typing import Any

import click

from pixtag.cli.app import echo_json, get_settings, instance_option, json_option


@click.command("bot")
@instance_option
@click.option("--once", is_flag=True, help="Answer what is waiting, then exit (for cron and tests).")
@click.option("--poll-interval", type=float, default=None, metavar="SECONDS",
              help="Seconds between two reads of the notifications (default: bot_poll_interval).")
@json_option
@click.pass_context
def bot_cmd(ctx: click.Context, instance_url: str | None, once: bool, poll_interval: float | None,
            as_json: bool) -> None:
    """Run the bot account: answer each mention in a post with photos with suggested hashtags.

    Its token is PIXTAG_BOT_TOKEN (or `pixtag auth --bot`), never a flag. In the foreground it
    logs one line per mention and stops on Ctrl-C or SIGTERM after the mention at hand.
    """
    from pixtag.bot.run import run_bot

    settings = get_settings(ctx, instance_url=instance_url, bot_poll_interval=poll_interval)
    stop = threading.Event()
    previous: dict[int, Any] = {}
    if not once and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        summary = run_bot(settings, once=once, stop=stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if as_json:
        echo_json(summary)
    else:
        click.echo("pixtag bot: " + ", ".join(f"{k} {v}" for k, v in summary.items()))
