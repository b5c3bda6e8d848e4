"""Bearer JWTs: HS256 with a local secret, or RS256/ES256 keys from an OIDC issuer's JWKS.

Algorithms are pinned by configuration and never taken from the token; ``exp``, ``aud``, ``iss``
and ``sub`` are required. The tenant and user come from the verified claims only. Verified
tokens are cached until they expire, so the hot path pays for a signature check once per token.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from chatstream.errors import ChatstreamError
from gateway.errors import UnauthorizedError

_SYMMETRIC = {"HS256", "HS384", "HS512"}

MAX_TOKEN_CHARS = 8192  # a JWT is a few hundred bytes; far more is not a token


class AuthConfigError(ChatstreamError):
    """The token settings contradict each other."""


ADMIN_ROLE = "admin"


@dataclass(frozen=True)
class Identity:
    tenant_id: str
    user_id: str
    admin: bool = False  # the token's ``roles`` claim holds ``admin``: it may read every tenant's analytics


class TokenVerifier:
    def __init__(
        self,
        *,
        algorithms: list[str],
        audience: str,
        issuer: str,
        tenant_claim: str = "tenant_id",
        secret: str | None = None,
        jwks_url: str | None = None,
        cache_size: int = 10_000,
    ) -> None:
        if "none" in {a.lower() for a in algorithms}:
            raise AuthConfigError("the 'none' JWT algorithm is never accepted")
        if jwks_url and _SYMMETRIC & set(algorithms):
            raise AuthConfigError("with a JWKS URL, accept only asymmetric algorithms (RS256, ES256)")
        if not jwks_url and not secret:
            raise AuthConfigError("set a JWT secret (HS256) or a JWKS URL")
        self.algorithms = algorithms
        self.audience = audience
        self.issuer = issuer
        self.tenant_claim = tenant_claim
        self._secret = secret
        self._jwks = jwt.PyJWKClient(jwks_url, cache_keys=True) if jwks_url else None
        self._cache: dict[str, tuple[Identity, float]] = {}
        self._cache_size = cache_size

    def verify(self, authorization: str | None, now: float | None = None) -> Identity:
        """The identity of an ``Authorization: Bearer <jwt>`` header, or UnauthorizedError."""
        now = time.time() if now is None else now
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:  # the scheme is case-insensitive (RFC 9110)
            raise UnauthorizedError("missing bearer token (Authorization: Bearer <jwt>)")
        if len(token) > MAX_TOKEN_CHARS:  # refused before any decoding
            raise UnauthorizedError(f"bearer token longer than {MAX_TOKEN_CHARS} characters")
        cached = self._cache.get(token)
        if cached is not None and cached[1] > now:
            return cached[0]
        claims = self._decode(token)
        if float(claims["exp"]) <= now:  # the caller's clock decides too, not only PyJWT's
            raise UnauthorizedError("token expired")
        tenant, user = claims.get(self.tenant_claim), claims.get("sub")
        if not isinstance(tenant, str) or not tenant or not isinstance(user, str) or not user:
            raise UnauthorizedError(f"token lacks the '{self.tenant_claim}' or 'sub' claim")
        identity = Identity(tenant, user, admin=ADMIN_ROLE in roles_of(claims))
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        self._cache[token] = (identity, float(claims["exp"]))
        return identity

    def _decode(self, token: str) -> dict[str, Any]:
        try:
            key: Any = self._secret
            if self._jwks is not None:
                key = self._jwks.get_signing_key_from_jwt(token).key
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise UnauthorizedError("token expired") from exc
        except jwt.PyJWTError as exc:
            raise UnauthorizedError(f"invalid token: {exc}") from exc
        return claims


def roles_of(claims: dict[str, Any]) -> set[str]:
    """The ``roles`` claim: a list of names, or one space-separated string (as OAuth scopes are);
    anything else grants no role."""
    roles = claims.get("roles")
    if isinstance(roles, str):
        return set(roles.split())
    if isinstance(roles, list):
        return {r for r in roles if isinstance(r, str)}
    return set()


def issue_token(
    secret: str, *, tenant: str, user: str, audience: str, issuer: str, ttl_s: int = 3600,
    tenant_claim: str = "tenant_id", roles: list[str] | None = None, now: float | None = None,
) -> str:  # fmt: skip
    """An HS256 token for local use (``chatstream token``); ``roles``: e.g. ``["admin"]``."""
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {"sub": user, tenant_claim: tenant, "aud": audience, "iss": issuer,
                              "iat": issued, "exp": issued + ttl_s}  # fmt: skip
    if roles:
        claims["roles"] = roles
    return jwt.encode(claims, secret, algorithm="HS256")


def local_secret(state_dir: Path) -> str:
    """The local HS256 secret, made once in ``<state>/auth/jwt-secret`` (mode 0600)."""
    path = state_dir / "auth" / "jwt-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(48))
    return path.read_text().strip()
