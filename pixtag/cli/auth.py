"""``pixtag auth``: get a user token for an instance (:mod:`pixtag.sources.auth`)."""

from __future__ import annotations

import click

from pixtag.cli.app import get_settings


@click.command("auth")
@click.option("--instance", "instance_url", default=None, metavar="URL",
              help="Pixelfed instance (default: PIXTAG_INSTANCE_URL).")
@click.option("--bot", is_flag=True, help="The bot account's token (read and write scopes, for `pixtag bot`): "
              "log in as the bot account when the browser asks.")
@click.pass_context
def auth_cmd(ctx: click.Context, instance_url: str | None, bot: bool) -> None:
    """Get a user token (OAuth authorization code) and store it for this instance."""
    from pixtag.core.config import write_credentials
    from pixtag.sources.auth import (
        BOT_SCOPES,
        SCOPES,
        AuthFlowError,
        _session,
        authorize_url,
        check_bot_token,
        check_token,
        exchange_code,
        register_app,
    )

    settings = get_settings(ctx, instance_url=instance_url)
    if not settings.instance_url:
        raise AuthFlowError("pass --instance URL or set PIXTAG_INSTANCE_URL")
    base = settings.instance_url
    scopes = BOT_SCOPES if bot else SCOPES
    http = _session(settings, base)
    app = register_app(http, base, "pixtag bot" if bot else "pixtag", scopes)
    if bot:
        click.echo("Open this URL in a browser, log in AS THE BOT ACCOUNT, approve pixtag (read and write), "
                   "and copy the code:")
    else:
        click.echo("Open this URL in a browser, log in, approve pixtag (read-only), and copy the code:")
    click.echo(f"\n  {authorize_url(base, app, scopes)}\n")
    code = click.prompt("Authorization code", hide_input=True)
    token = exchange_code(http, base, app, code, scopes)
    if bot:
        who = check_bot_token(settings, base, token)
        path = write_credentials(base, token, bot=True)
        click.echo(f"Bot token of @{who} checked and stored in {path} (readable only by you); "
                   f"`pixtag bot` uses it for {base}.")
        return
    check_token(settings, base, token)
    path = write_credentials(base, token)
    click.echo(f"Token checked and stored in {path} (readable only by you); "
               f"pixtag uses it for {base}.")
