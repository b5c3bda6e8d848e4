"""``chatstream dashboard``: the dashboard's address, with a bearer token for its API.

The token rides in the URL's fragment (``/dashboard#token=...``): browsers never send a fragment
to a server, and the page moves it into the tab's sessionStorage and out of the address bar.
Without a tenant the token has the admin role (every tenant's figures, as ``chatstream token
--admin``); with one it reads that tenant only.
"""

from __future__ import annotations

import typer

from chatstream.errors import ChatstreamError
from chatstream.settings import Settings

app = typer.Typer()

DEFAULT_TTL_S = 8 * 3600  # a working day
ADMIN_TENANT = "admin"  # the tenant claim of an admin link: tokens need one; the role reads all


class DashboardLinkError(ChatstreamError):
    """No local token can be issued for the dashboard link."""


def dashboard_address(settings: Settings) -> str:
    """Where a browser on this machine reaches the gateway's dashboard."""
    host = settings.gateway_host
    if host in ("0.0.0.0", "::", ""):  # a wildcard listen address is not a place to browse to
        host = "127.0.0.1"
    return f"http://{host}:{settings.gateway_listen_port}/dashboard"


def dashboard_link(settings: Settings, *, tenant: str | None = None, user: str = "dashboard",
                   ttl_s: int = DEFAULT_TTL_S) -> str:  # fmt: skip
    """The dashboard's address with a fresh local token in its fragment: an admin one (every
    tenant) when ``tenant`` is None, else one that reads ``tenant`` only."""
    from gateway.auth import ADMIN_ROLE, issue_token
    from gateway.main import jwt_secret

    secret = jwt_secret(settings)
    if secret is None:
        raise DashboardLinkError("with CHATSTREAM_JWKS_URL set, tokens come from your OIDC provider: open "
                                 f"{dashboard_address(settings)} and paste one")  # fmt: skip
    token = issue_token(secret, tenant=tenant or ADMIN_TENANT, user=user, audience=settings.jwt_audience,
                        issuer=settings.jwt_issuer, ttl_s=ttl_s, tenant_claim=settings.jwt_tenant_claim,
                        roles=None if tenant else [ADMIN_ROLE])  # fmt: skip
    return f"{dashboard_address(settings)}#token={token}"


def dashboard_hint(settings: Settings) -> str:
    """One line for ``chatstream run`` and ``chatstream demo``: where the live dashboard is."""
    try:
        return f"dashboard (admin link, valid {DEFAULT_TTL_S // 3600} h): {dashboard_link(settings)}"
    except DashboardLinkError:
        return f"dashboard: {dashboard_address(settings)} (give it a token from your OIDC provider)"


@app.command()
def dashboard(
    ctx: typer.Context,
    tenant: str | None = typer.Option(None, help="Show this tenant only (default: an admin link, every tenant)."),
    ttl_s: int = typer.Option(DEFAULT_TTL_S, min=60, help="How long the link's token lives, in seconds."),
) -> None:
    """Print the dashboard's URL with a local bearer token in its fragment (never sent to a server):
    open it in a browser on this machine while `chatstream run` serves."""
    print(dashboard_link(ctx.obj, tenant=tenant, ttl_s=ttl_s))
