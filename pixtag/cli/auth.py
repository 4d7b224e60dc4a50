"""``pixtag auth``: get a user token for an instance (:mod:`pixtag.sources.auth`)."""

from __future__ import annotations

import click

from pixtag.cli.app import get_settings


@click.command("auth")
@click.option("--instance", "instance_url", default=None, metavar="URL",
              help="Pixelfed instance (default: PIXTAG_INSTANCE_URL).")
@click.pass_context
def auth_cmd(ctx: click.Context, instance_url: str | None) -> None:
    """Get a user token (OAuth authorization code) and store it for this instance."""
    from pixtag.core.config import write_credentials
    from pixtag.sources.auth import (
        AuthFlowError,
        _session,
        authorize_url,
        check_token,
        exchange_code,
        register_app,
    )

    settings = get_settings(ctx, instance_url=instance_url)
    if not settings.instance_url:
        raise AuthFlowError("pass --instance URL or set PIXTAG_INSTANCE_URL")
    base = settings.instance_url
    http = _session(settings, base)
    app = register_app(http, base)
    click.echo("Open this URL in a browser, log in, approve pixtag (read-only), and copy the code:")
    click.echo(f"\n  {authorize_url(base, app)}\n")
    code = click.prompt("Authorization code", hide_input=True)
    token = exchange_code(http, base, app, code)
    check_token(settings, base, token)
    path = write_credentials(base, token)
    click.echo(f"Token checked and stored in {path} (readable only by you); "
               f"pixtag uses it for {base}.")
