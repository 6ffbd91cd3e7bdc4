"""The testing endpoints (``/_test/*``, only with ``testing_endpoints``; never in production).

Their state (injected faults, request counts, issued tokens) lives in the database, so every
gunicorn worker and the socket process see the same. Each acts on the caller's tenant.
"""

from .errors import ApiError, json_response
from .validation import is_int


def register(bp, state, mark, body, tenant):
    storage = state.storage

    @bp.post("/_test/reset")
    @mark
    def test_reset():
        return json_response({"ok": True, "epoch": state.reset(tenant())})

    @bp.post("/_test/faults")
    @mark
    def test_faults():
        given = body()
        if not isinstance(given, dict) or not is_int(given.get("failNext")) or not is_int(given.get("status", 500)):
            raise ApiError(400, "bad_request", "send {failNext: int, status: int}")
        storage.set_faults(tenant(), given["failNext"], given.get("status", 500))
        return json_response({"ok": True})

    @bp.get("/_test/history")
    @mark
    def test_history():
        return json_response({"ops": storage.history(tenant())})

    @bp.get("/_test/stats")
    @mark
    def test_stats():
        return json_response({"appliedOps": storage.applied_count(tenant()), "requests": storage.request_counts(tenant())})

    @bp.post("/_test/tokens")
    @mark
    def test_tokens():
        """Issues a token for ``tenant`` (default: the caller's), valid for ``ttl_ms`` (default: no expiry)."""
        given = body()
        if not isinstance(given, dict):
            raise ApiError(400, "bad_request", "send {tenant: string, ttl_ms?: int}")
        name = given.get("tenant", tenant())
        ttl = given.get("ttl_ms")
        if not isinstance(name, str) or not 1 <= len(name) <= 128 or (ttl is not None and not (is_int(ttl) and ttl >= 0)):
            raise ApiError(400, "bad_request", "send {tenant: string, ttl_ms?: int}")
        token, expires_at = storage.issue_token(name, ttl)
        return json_response({"token": token, "tenant": name, "expires_at": expires_at})
