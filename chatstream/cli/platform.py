"""``chatstream gateway | token``: the platform's processes and helpers."""

from __future__ import annotations

import typer

from chatstream.cli.output import console
from chatstream.settings import Settings

app = typer.Typer()


def readiness_urls(settings: Settings) -> dict[str, str]:
    """Each platform component's ``/readyz``."""
    urls = {"gateway": f"{settings.gateway_url}/readyz"}
    for kind in ("clickhouse", "postgres"):
        urls[f"sink-{kind}"] = f"http://{settings.gateway_host}:{settings.sink_port(kind)}/readyz"
    urls["dispatch"] = f"http://{settings.gateway_host}:{settings.dispatch_port}/readyz"
    urls["anomaly"] = f"http://{settings.gateway_host}:{settings.anomaly_port}/readyz"
    urls["scaling"] = f"http://{settings.gateway_host}:{settings.scaling_port}/readyz"
    return urls


@app.command()
def run(
    ctx: typer.Context,
    only: list[str] = typer.Option(None, "--only", help="Run just these: gateway, sink-clickhouse, sink-postgres, dispatch, engagement, anomaly, scaling."),
    setup: bool = typer.Option(True, "--setup/--no-setup", help="First migrate, apply topics and register "
                               "schemas (idempotent); --no-setup when a deployment step does it."),
) -> None:
    """Run the gateway, the sinks, the dispatch, engagement, anomaly and scaling jobs (Ctrl-C or SIGTERM: each flushes, commits and exits; exit 0).
    A component that crashes is restarted after a back-off while the others keep serving."""
    import os

    from chatstream.cli.dashboard import dashboard_hint
    from chatstream.cli.preparation import prepare_platform
    from chatstream.cli.supervisor import COMPONENTS, run_platform

    settings: Settings = ctx.obj
    components = only or list(COMPONENTS)
    unknown = set(components) - set(COMPONENTS)
    if unknown:
        raise typer.BadParameter(f"unknown component(s): {', '.join(sorted(unknown))}", param_hint="--only")
    if setup:
        prepare_platform(settings, lambda step: console.print(f"setting up: {step}"))
    env = {**os.environ, "CHATSTREAM_STATE_DIR": str(settings.state_dir)}
    readiness = {name: url for name, url in readiness_urls(settings).items() if name in components}
    where = "; ".join(f"{name} at {url.removesuffix('/readyz')}" if (url := readiness.get(name)) else name
                      for name in components)  # the engagement job serves no HTTP
    console.print(f"chatstream running: {where}; logs in {settings.state_dir / 'logs'}; Ctrl-C stops")
    if "gateway" in components:
        console.print(dashboard_hint(settings), soft_wrap=True)
    raise typer.Exit(run_platform(components, log_dir=settings.state_dir / "logs", env=env, readiness=readiness))


@app.command()
def gateway(
    ctx: typer.Context,
    workers: int | None = typer.Option(
        None, min=1, help="Worker processes on the port (SO_REUSEPORT) [env: CHATSTREAM_GATEWAY_WORKERS; default 1]."
    ),
) -> None:
    """Serve the gateway (Ctrl-C: stop accepting, flush Kafka, exit 0)."""
    from gateway.main import serve

    settings = ctx.obj if workers is None else ctx.obj.model_copy(update={"gateway_workers": workers})
    serve(settings)


@app.command()
def sink(
    ctx: typer.Context,
    kind: str = typer.Argument(..., help="clickhouse or postgres", metavar="clickhouse|postgres"),
    group: str | None = typer.Option(
        None, "--group", help="Consumer group; default chatstream-sink-<kind>. A second copy of a store "
        "(another ClickHouse server, say) needs a group of its own."),
) -> None:
    """Drain the topics pipelines/sinks.py routes into ClickHouse or PostgreSQL (Ctrl-C: flush, commit, exit 0)."""
    from chatstream.cli.sinks import run_sink

    if kind not in ("clickhouse", "postgres"):  # pipelines/sinks.py's SINK_TABLES
        raise typer.BadParameter("clickhouse or postgres", param_hint="KIND")
    run_sink(ctx.obj, kind, group=group)


@app.command()
def demo(
    ctx: typer.Context,
    events: int = typer.Option(20_000, min=1, help="How many chat events to send."),
    concurrency: int = typer.Option(16, min=1, help="Concurrent client connections."),
    chats: int = typer.Option(200, min=0, help="Streaming chat completions to send through the dispatch job (0: none)."),
) -> None:
    """Run the platform, drive synthetic chat traffic and streaming chats through the gateway, and summarise."""
    from chatstream.cli.demo.run import run_demo

    raise typer.Exit(run_demo(ctx.obj, events=events, concurrency=concurrency, chats=chats, console=console))


@app.command()
def token(
    ctx: typer.Context,
    tenant: str = typer.Option(..., help="The tenant the token speaks for."),
    user: str = typer.Option(..., help="The user (the `sub` claim)."),
    ttl_s: int = typer.Option(3600, help="Lifetime in seconds."),
    admin: bool = typer.Option(False, "--admin", help="Grant the admin role: the analytics API of every tenant."),
) -> None:
    """Print a local HS256 bearer token for the gateway."""
    from gateway.auth import issue_token
    from gateway.main import jwt_secret

    settings: Settings = ctx.obj
    secret = jwt_secret(settings)
    if secret is None:
        raise typer.BadParameter("tokens are issued by your OIDC provider when CHATSTREAM_JWKS_URL is set")
    print(issue_token(secret, tenant=tenant, user=user, audience=settings.jwt_audience,
                      issuer=settings.jwt_issuer, ttl_s=ttl_s, tenant_claim=settings.jwt_tenant_claim,
                      roles=["admin"] if admin else None))  # fmt: skip
