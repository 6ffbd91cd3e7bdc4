"""Bearer tokens and their tenants.

``REDUX_IDB_SYNC_TOKENS`` is JSON (or a dict in ``app.config``) mapping a token to a tenant, or to
``{"tenant": "...", "expires_at": <epoch ms>}``. The legacy single ``TOKEN`` maps to tenant
``"default"``. Tokens issued by ``POST /_test/tokens`` live in the database (``tokens`` table), so
every worker and the socket process accept them.
"""

import hmac
import json

from .storage import now_ms

DEFAULT_TENANT = "default"


class TokenConfigError(ValueError):
    """REDUX_IDB_SYNC_TOKENS is not a map of token to tenant."""


def parse_tokens(raw, legacy_token=None):
    """``{token: (tenant, expires_at_or_None)}`` from the configuration."""
    if isinstance(raw, str):
        raw = raw.strip()
        try:
            raw = json.loads(raw) if raw else {}
        except ValueError as error:
            raise TokenConfigError(f"REDUX_IDB_SYNC_TOKENS is not JSON: {error}") from None
    raw = raw or {}
    if not isinstance(raw, dict):
        raise TokenConfigError("REDUX_IDB_SYNC_TOKENS must map tokens to tenants")
    tokens = {}
    for token, spec in raw.items():
        token = str(token)
        if isinstance(spec, str):
            tenant, expires_at = spec, None
        elif isinstance(spec, dict) and isinstance(spec.get("tenant"), str):
            tenant, expires_at = spec["tenant"], spec.get("expires_at")
            if expires_at is not None and not isinstance(expires_at, (int, float)):
                raise TokenConfigError(f"expires_at of a token of tenant {tenant!r} must be epoch milliseconds")
        else:
            raise TokenConfigError("each token maps to a tenant name or to {tenant, expires_at}")
        if not token or not tenant:
            raise TokenConfigError("tokens and tenant names must not be empty")
        tokens[token] = (tenant, expires_at)
    if legacy_token:
        tokens[legacy_token] = (DEFAULT_TENANT, None)
    return tokens


def lookup(tokens, given):
    """The configured ``(tenant, expires_at)`` of ``given``, comparing in constant time per token."""
    found = None
    given_bytes = given.encode()
    for token, spec in tokens.items():
        if hmac.compare_digest(given_bytes, token.encode()):
            found = spec
    return found


def is_live(expires_at):
    return expires_at is None or now_ms() < expires_at
