from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest

from gateway.auth import AuthConfigError, Identity, TokenVerifier, issue_token, local_secret
from gateway.errors import UnauthorizedError
from tests.unit.gateway.fakes import AUDIENCE, ISSUER, SECRET, token

VERIFIER = TokenVerifier(algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER, secret=SECRET)


def bearer(value: str) -> str:
    return f"Bearer {value}"


def test_a_valid_token_gives_the_tenant_and_user_from_its_claims() -> None:
    assert VERIFIER.verify(bearer(token("acme", "alice"))) == Identity("acme", "alice")


def claims(**override: object) -> dict[str, object]:
    now = int(time.time())
    base: dict[str, object] = {"sub": "alice", "tenant_id": "acme", "aud": AUDIENCE, "iss": ISSUER, "exp": now + 60}
    base.update(override)
    return {k: v for k, v in base.items() if v is not None}


@pytest.mark.parametrize(
    ("forged", "reason"),
    [
        (jwt.encode(claims(), None, algorithm="none"), "alg none"),
        (jwt.encode(claims(), "another-secret-another-secret-0123456789", algorithm="HS256"), "wrong key"),
        (jwt.encode(claims(exp=int(time.time()) - 10), SECRET, algorithm="HS256"), "expired"),
        (jwt.encode(claims(aud="someone-else"), SECRET, algorithm="HS256"), "wrong audience"),
        (jwt.encode(claims(iss="evil"), SECRET, algorithm="HS256"), "wrong issuer"),
        (jwt.encode(claims(exp=None), SECRET, algorithm="HS256"), "no exp"),
        (jwt.encode(claims(tenant_id=None), SECRET, algorithm="HS256"), "no tenant"),
        (jwt.encode(claims(), SECRET, algorithm="HS512"), "algorithm not pinned"),
        ("not.a.jwt", "garbage"),
    ],
)
def test_forged_tokens_are_refused(forged: str, reason: str) -> None:
    with pytest.raises(UnauthorizedError):
        VERIFIER.verify(bearer(forged))


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer"])
def test_missing_or_non_bearer_authorization_is_refused(header: str | None) -> None:
    with pytest.raises(UnauthorizedError, match="bearer"):
        VERIFIER.verify(header)


def test_a_cached_token_still_expires() -> None:
    short = issue_token(SECRET, tenant="acme", user="alice", audience=AUDIENCE, issuer=ISSUER, ttl_s=5)
    now = time.time()
    assert VERIFIER.verify(bearer(short), now=now) == Identity("acme", "alice")
    with pytest.raises(UnauthorizedError, match="expired"):
        VERIFIER.verify(bearer(short), now=now + 10)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"algorithms": ["none"], "secret": "x"}, "none"),
        ({"algorithms": ["HS256"], "jwks_url": "https://idp/jwks"}, "asymmetric"),
        ({"algorithms": ["RS256"]}, "secret"),
    ],
)
def test_contradictory_settings_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(AuthConfigError, match=message):
        TokenVerifier(audience=AUDIENCE, issuer=ISSUER, **kwargs)  # type: ignore[arg-type]


def test_local_secret_is_made_once_and_private(tmp_path: Path) -> None:
    first = local_secret(tmp_path)
    assert local_secret(tmp_path) == first and len(first) >= 32
    assert (tmp_path / "auth" / "jwt-secret").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer"])
def test_the_bearer_scheme_is_case_insensitive(scheme: str) -> None:
    assert VERIFIER.verify(f"{scheme} {token('acme', 'alice')}") == Identity("acme", "alice")


def test_an_oversized_token_is_refused_before_decoding() -> None:
    with pytest.raises(UnauthorizedError, match="longer than"):
        VERIFIER.verify(bearer("x" * 1_000_000))


@pytest.mark.parametrize(
    ("roles", "admin"),
    [(None, False), (["admin"], True), (["viewer", "admin"], True), ("admin ops", True), (["viewer"], False),
     ("administrator", False), ({"admin": True}, False), ([1, "x"], False)],
)  # fmt: skip
def test_the_roles_claim_makes_an_admin(roles: object, admin: bool) -> None:
    identity = VERIFIER.verify(bearer(jwt.encode(claims(roles=roles), SECRET, algorithm="HS256")))
    assert identity == Identity("acme", "alice", admin=admin)


def test_issued_tokens_carry_the_admin_role_only_when_asked() -> None:
    assert VERIFIER.verify(bearer(token(roles=["admin"]))).admin
    assert not VERIFIER.verify(bearer(token())).admin
    assert "roles" not in jwt.decode(token(), options={"verify_signature": False})
