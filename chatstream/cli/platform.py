"""``chatstream gateway | token``: the platform's processes and helpers."""

from __future__ import annotations

import typer

from chatstream.settings import Settings

app = typer.Typer()


@app.command()
def gateway(ctx: typer.Context) -> None:
    """Serve the gateway (Ctrl-C: stop accepting, flush Kafka, exit 0)."""
    from gateway.main import serve

    serve(ctx.obj)


@app.command()
def sink(
    ctx: typer.Context,
    kind: str = typer.Argument(..., help="clickhouse or postgres", metavar="clickhouse|postgres"),
) -> None:
    """Drain the topics pipelines/sinks.py routes into ClickHouse or PostgreSQL (Ctrl-C: flush, commit, exit 0)."""
    from connectors.main import run_sink

    if kind not in ("clickhouse", "postgres"):
        raise typer.BadParameter("clickhouse or postgres", param_hint="KIND")
    run_sink(ctx.obj, kind)


@app.command()
def token(
    ctx: typer.Context,
    tenant: str = typer.Option(..., help="The tenant the token speaks for."),
    user: str = typer.Option(..., help="The user (the `sub` claim)."),
    ttl_s: int = typer.Option(3600, help="Lifetime in seconds."),
) -> None:
    """Print a local HS256 bearer token for the gateway."""
    from gateway.auth import issue_token
    from gateway.main import jwt_secret

    settings: Settings = ctx.obj
    secret = jwt_secret(settings)
    if secret is None:
        raise typer.BadParameter("tokens are issued by your OIDC provider when CHATSTREAM_JWKS_URL is set")
    print(issue_token(secret, tenant=tenant, user=user, audience=settings.jwt_audience,
                      issuer=settings.jwt_issuer, ttl_s=ttl_s, tenant_claim=settings.jwt_tenant_claim))  # fmt: skip
