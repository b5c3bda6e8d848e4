"""``chatstream dashboard``'s link: the dashboard's address with a verifiable token in its fragment."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatstream.cli.dashboard import DashboardLinkError, dashboard_address, dashboard_hint, dashboard_link
from chatstream.settings import Settings
from gateway.auth import TokenVerifier
from gateway.main import jwt_secret


def verifier(settings: Settings) -> TokenVerifier:
    return TokenVerifier(algorithms=["HS256"], audience=settings.jwt_audience, issuer=settings.jwt_issuer,
                         secret=jwt_secret(settings))  # fmt: skip


def test_the_default_link_carries_an_admin_token_in_its_fragment(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, port_base=21000)
    link = dashboard_link(settings)
    address, _, fragment = link.partition("#")
    assert address == "http://127.0.0.1:21080/dashboard"
    assert fragment.startswith("token=")
    identity = verifier(settings).verify(f"Bearer {fragment.removeprefix('token=')}")
    assert identity.admin


def test_a_tenant_link_reads_that_tenant_only(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, port_base=21000)
    token = dashboard_link(settings, tenant="acme").partition("#token=")[2]
    identity = verifier(settings).verify(f"Bearer {token}")
    assert identity.tenant_id == "acme" and not identity.admin


def test_a_wildcard_listen_address_is_browsed_on_localhost(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, port_base=21000, gateway_host="0.0.0.0")
    assert dashboard_address(settings) == "http://127.0.0.1:21080/dashboard"


def test_with_an_oidc_provider_the_link_has_no_token(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, port_base=21000, jwks_url="https://idp.example/jwks",
                        jwt_algorithms=["RS256"], jwt_secret=None)  # fmt: skip
    with pytest.raises(DashboardLinkError, match="OIDC"):
        dashboard_link(settings)
    assert dashboard_hint(settings) == "dashboard: http://127.0.0.1:21080/dashboard (give it a token from your OIDC provider)"
