"""Reference server for redux-idb-sync: the protocol of docs/protocol.md as a Flask Blueprint.

    from redux_idb_sync_server import create_blueprint
    app.register_blueprint(create_blueprint("sync.sqlite3", token=None), url_prefix="/api")
"""

import hmac
import json
import math
import re
import threading

from flask import Blueprint, Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException

from .compression import BodyTooLarge, CorruptBody, UnsupportedEncoding, compress, decode_body
from .merge import malformed_patch
from .storage import Storage, now_ms

__all__ = ["create_blueprint", "create_app", "register_json_errors", "Storage"]

# 3: patch operations with field-level merge, gzip request bodies (docs/protocol.md, "Version 3").
PROTOCOL = 3
DEFAULT_MAX_BODY = 2 * 1024 * 1024
MAX_OPS = 500
MAX_DEPTH = 100
MAX_CLIENT_TIME = 2**53
MAX_CURSOR = 2**63 - 1  # SQLite's INTEGER is int64
# Every pattern is used with fullmatch: "$" would also match before a trailing newline.
COLLECTION = re.compile(r"[A-Za-z0-9_-]{1,64}")
CURSOR = re.compile(r"[0-9]{1,19}")  # ASCII digits only; str.isdigit() also accepts "²"
LIMIT = re.compile(r"[0-9]{1,4}")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# A Python str holds a surrogate code point only when the JSON had an unpaired \uD800-\uDFFF
# escape (paired escapes decode to one character): such a string is not well-formed UTF-16 and
# SQLite cannot encode it.
SURROGATE = re.compile(r"[\ud800-\udfff]")


class ApiError(Exception):
    def __init__(self, status, code, message, **extra):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


class NotStrictJson(ValueError):
    """A request body that is not strict JSON (RFC 8259 has no NaN or infinite numbers)."""


def _refuse_constant(name):
    raise NotStrictJson(f"{name} is not JSON")


def _finite_float(text):
    number = float(text)
    if not math.isfinite(number):
        raise NotStrictJson("a number is too large to be finite")
    return number


def loads_strict(data):
    """Parses a request body; NaN, Infinity, -Infinity and numbers that overflow to infinity raise."""
    return json.loads(data, parse_constant=_refuse_constant, parse_float=_finite_float)


def dumps(body):
    """Every answer goes through here: allow_nan=False, so nothing that is not JSON leaves."""
    return json.dumps(body, separators=(",", ":"), allow_nan=False)


def json_response(body, status=200, headers=None):
    return Response(dumps(body), status=status, mimetype="application/json", headers=headers)


def error_response(status, code, message, headers=None, **extra):
    return json_response({"error": code, "message": message, **extra}, status, headers)


ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    410: "gone",
    411: "length_required",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    429: "too_many_requests",
    431: "headers_too_large",
    500: "internal",
    501: "not_implemented",
    503: "unavailable",
}


def error_code_for(status):
    return ERROR_CODES.get(status, "internal" if status >= 500 else f"http_{status}")


def http_error_response(error):
    """A Werkzeug HTTPException as a JSON error, keeping its status and headers such as Allow."""
    status = error.code or 500
    if status >= 500:
        return error_response(status, error_code_for(status), "internal server error")
    headers = [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]
    message = (error.description or error.name or "error").strip()
    return error_response(status, error_code_for(status), message, headers=headers)


def register_json_errors(app):
    """Makes every HTTP error of ``app`` a JSON body, including routing errors (404, 405) that
    happen before any blueprint is chosen, and unhandled exceptions (500, details logged only)."""
    app.register_error_handler(HTTPException, http_error_response)

    def internal(error):
        app.logger.exception("unhandled error", exc_info=error)
        return error_response(500, "internal", "internal server error")

    app.register_error_handler(Exception, internal)


def _depth(value):
    """The depth rule of docs/protocol.md: the largest number of property/index steps from the
    value's root to anything inside it (a primitive, {} or [] is 0; {"a": 1} and [1] are 1).
    Values of depth MAX_DEPTH are accepted, deeper ones refused. Stops counting past MAX_DEPTH, and
    is iterative, so a hostile body cannot overflow our stack."""
    deepest = 0
    stack = [(value, 0)]
    while stack:
        current, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            return deepest
        if isinstance(current, dict):
            stack.extend((v, depth + 1) for v in current.values())
        elif isinstance(current, list):
            stack.extend((v, depth + 1) for v in current)
    return deepest


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _utf16_length(text):
    """The length as JavaScript counts it: UTF-16 code units (a character beyond U+FFFF is two)."""
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)


def _bad_string(value, name, max_len):
    """Why ``value`` is not a well-formed string of 1 to ``max_len`` UTF-16 code units, or None."""
    if not isinstance(value, str) or not 1 <= _utf16_length(value) <= max_len:
        return f"{name} must be a string of 1 to {max_len} characters"
    if SURROGATE.search(value):
        return f"{name} must be well-formed UTF-16 (no unpaired surrogates)"
    return None


def validate_id(item_id):
    problem = _bad_string(item_id, "id", 512)
    if problem:
        return problem
    if CONTROL.search(item_id):
        return "id must not contain control characters"
    return None


def parse_client_time(value):
    """Milliseconds as an integer in [0, 2**53], rounded half up as JavaScript's Math.round; or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if not 0 <= value <= MAX_CLIENT_TIME:
        return None
    if isinstance(value, int):
        return value
    whole = math.floor(value)
    return whole + 1 if value - whole >= 0.5 else whole  # value - whole is exact for a double


def parse_cursor(raw, name):
    """A cursor query parameter: ASCII decimal within int64."""
    if not CURSOR.fullmatch(raw) or int(raw) > MAX_CURSOR:
        raise ApiError(400, "bad_request", f"{name} must be a cursor returned by the server")
    return int(raw)


def validate_op(raw, defaults=None):
    """Returns (op, None) or (None, problem)."""
    if not isinstance(raw, dict):
        return None, "operation must be an object"
    op = {**(defaults or {}), **raw}
    op_id = op.get("opId")
    problem = _bad_string(op_id, "opId", 128)
    if problem:
        return None, problem
    collection = op.get("collection")
    if not isinstance(collection, str) or not COLLECTION.fullmatch(collection):
        return None, "collection must match ^[A-Za-z0-9_-]{1,64}$"
    problem = validate_id(op.get("id"))
    if problem:
        return None, problem
    kind = op.get("type")
    if kind not in ("put", "delete", "patch"):
        return None, 'type must be "put", "delete" or "patch"'
    base = op.get("baseVersion")
    if base is not None and not (_is_int(base) and base >= 0):
        return None, "baseVersion must be a non-negative integer or null"
    client_time = parse_client_time(op.get("clientTime", 0))
    if client_time is None:
        return None, f"clientTime must be a finite number from 0 to {MAX_CLIENT_TIME}"
    force = op.get("force", False)
    if not isinstance(force, bool):
        return None, "force must be a boolean"
    value = op.get("value")
    if kind == "put" and value is None:
        return None, "value is required for put"
    if kind in ("delete", "patch") and value is not None:
        return None, f"value must be absent for {kind}"
    if _depth(value) > MAX_DEPTH:
        return None, f"value is nested deeper than {MAX_DEPTH}"
    patch = base_fields = None
    if kind == "patch":
        patch, base_fields = op.get("patch"), op.get("base")
        problem = malformed_patch(patch, base_fields)
        if problem:
            return None, f"malformed patch: {problem}"
        if _depth(patch) > MAX_DEPTH or _depth(base_fields) > MAX_DEPTH:
            return None, f"patch is nested deeper than {MAX_DEPTH}"
    elif op.get("patch") is not None or op.get("base") is not None:
        return None, f"patch and base belong to a patch operation, not a {kind}"
    return {
        "opId": op_id,
        "collection": collection,
        "id": op["id"],
        "type": kind,
        "value": value,
        "baseVersion": base,
        "clientTime": client_time,
        "force": force,
        "patch": patch,
        "base": base_fields,
    }, None


def create_blueprint(db_path, token=None, max_body_bytes=DEFAULT_MAX_BODY, testing_endpoints=False, name="redux_idb_sync"):
    """The sync API as a Blueprint. Register it under any prefix (the client's ``baseUrl``).

    ``token``: when set, every endpoint except health requires ``Authorization: Bearer <token>``.
    ``max_body_bytes``: larger request bodies get 413.
    ``testing_endpoints``: enables ``/_test/reset``, ``/_test/faults``, ``/_test/history`` and ``/_test/stats``.
    """
    storage = Storage(db_path)
    bp = Blueprint(name, __name__)
    state_lock = threading.Lock()
    faults = {"remaining": 0, "status": 500}
    stats = {"requests": {}}

    # Our view functions and the name each is counted under in /_test/stats. A request is
    # identified by the view function it was routed to, never by its URL, so neither the prefix
    # the blueprint is mounted under nor a route someone adds to it can open an endpoint.
    own_views = {}

    def counted_as(stat_name):
        def mark(view):
            own_views[view] = stat_name
            return view

        return mark

    def endpoint_name():
        view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
        return own_views.get(view, "unknown")

    def read_json():
        """Reads at most max_body_bytes + 1 bytes, so a body without Content-Length is bounded too;
        a gzip body (Content-Encoding: gzip) is inflated to at most max_body_bytes as well."""
        if request.content_length is not None and request.content_length > max_body_bytes:
            raise ApiError(413, "payload_too_large", f"body larger than {max_body_bytes} bytes")
        data = request.stream.read(max_body_bytes + 1)
        if len(data) > max_body_bytes:
            raise ApiError(413, "payload_too_large", f"body larger than {max_body_bytes} bytes")
        try:
            data = decode_body(data, request.headers.get("Content-Encoding"), max_body_bytes)
        except BodyTooLarge:
            raise ApiError(413, "payload_too_large", f"body larger than {max_body_bytes} bytes once decompressed") from None
        except UnsupportedEncoding:
            raise ApiError(415, "unsupported_media_type", "Content-Encoding must be gzip or identity", headers={"Accept-Encoding": "gzip"}) from None
        except CorruptBody as error:
            raise ApiError(400, "bad_request", f"body is not valid gzip: {error}") from None
        if not data:
            raise ApiError(400, "bad_request", "a JSON body is required")
        if not (request.mimetype or "").endswith("json"):
            raise ApiError(415, "unsupported_media_type", "send Content-Type: application/json")
        try:
            return loads_strict(data)
        except NotStrictJson as error:
            raise ApiError(400, "bad_request", f"body is not strict JSON: {error}") from None
        except (ValueError, RecursionError):
            raise ApiError(400, "bad_request", "body is not valid JSON") from None

    @bp.before_request
    def guard():
        name_ = endpoint_name()
        with state_lock:
            stats["requests"][name_] = stats["requests"].get(name_, 0) + 1
        # Exempt from auth and faults: exactly the health endpoint, and the testing endpoints
        # (which exist only when enabled); CORS preflights carry no credentials.
        if name_ in ("health", "_test") or request.method == "OPTIONS":
            return None
        if token is not None:
            header = request.headers.get("Authorization", "")
            given = header[7:] if header.startswith("Bearer ") else ""
            if not hmac.compare_digest(given.encode(), token.encode()):
                return error_response(401, "unauthorized", "missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"})
        with state_lock:
            if faults["remaining"] > 0:
                faults["remaining"] -= 1
                return error_response(faults["status"], "injected", f"injected failure ({faults['status']})")
        return None

    @bp.errorhandler(ApiError)
    def api_error(error):
        extra = dict(error.extra)
        headers = extra.pop("headers", None)
        return error_response(error.status, error.code, error.message, headers=headers, **extra)

    @bp.after_request
    def compress_answer(response):
        # Pull pages and push answers are large and repetitive: gzip them for clients that accept it.
        if response.direct_passthrough or response.headers.get("Content-Encoding") or response.mimetype != "application/json":
            return response
        body, encoding = compress(response.get_data(), request.headers.get("Accept-Encoding"))
        if encoding:
            response.set_data(body)
            response.headers["Content-Encoding"] = encoding
        response.vary.add("Accept-Encoding")
        return response

    @bp.errorhandler(HTTPException)
    def http_error(error):
        return http_error_response(error)

    @bp.errorhandler(Exception)
    def internal(error):
        current_app.logger.exception("unhandled error in the sync API", exc_info=error)
        return error_response(500, "internal", "internal server error")

    @bp.get("/health")
    @counted_as("health")
    def health():
        return json_response({"status": "ok", "serverTime": now_ms(), "protocol": PROTOCOL, "epoch": storage.epoch()})

    def write_one(method, collection, item_id):
        body = read_json()
        if not isinstance(body, dict):
            raise ApiError(400, "bad_request", "body must be a JSON object")
        from_path = {"collection": collection, "id": item_id, "type": "put" if method == "PUT" else "delete"}
        for field, expected in from_path.items():
            if field in body and body[field] != expected:
                raise ApiError(400, "bad_request", f"{field} comes from the path and method; the body names another")
        op, problem = validate_op(body, from_path)
        if problem:
            raise ApiError(400, "bad_request", problem)
        outcomes, _cursor, _epoch = storage.apply_ops([("op", op)])
        status, payload = outcomes[0][:2]
        if status == "conflict":
            fields = outcomes[0][2] if len(outcomes[0]) > 2 else None
            return error_response(
                409, "conflict", "baseVersion does not match the current version", opId=op["opId"], current=payload, **({"fields": fields} if fields else {})
            )
        answer = {"opId": op["opId"], "status": "applied", "record": payload}
        if status == "duplicate":
            answer["duplicate"] = True
        return json_response(answer)

    @bp.route("/items/<collection>/<path:item_id>", methods=["GET", "PUT", "DELETE"])
    @counted_as("item")
    def item(collection, item_id):
        if not COLLECTION.fullmatch(collection):
            raise ApiError(400, "bad_request", "collection must match ^[A-Za-z0-9_-]{1,64}$")
        problem = validate_id(item_id)
        if problem:
            raise ApiError(400, "bad_request", problem)
        if request.method == "GET":
            record = storage.get(collection, item_id)
            if record is None:
                raise ApiError(404, "not_found", "no such item")
            return json_response(record)
        return write_one(request.method, collection, item_id)

    @bp.post("/sync/push")
    @counted_as("push")
    def push():
        body = read_json()
        if not isinstance(body, dict):
            raise ApiError(400, "bad_request", "body must be a JSON object")
        problem = _bad_string(body.get("clientId"), "clientId", 128)
        if problem:
            raise ApiError(400, "bad_request", problem)
        ops = body.get("ops")
        if not isinstance(ops, list):
            raise ApiError(400, "bad_request", "ops must be a list")
        if not ops:
            raise ApiError(400, "bad_request", "ops must not be empty")
        if len(ops) > MAX_OPS:
            raise ApiError(413, "payload_too_large", f"at most {MAX_OPS} ops per push")
        prepared = []
        for raw in ops:
            op, problem = validate_op(raw)
            if problem:
                op_id = raw.get("opId") if isinstance(raw, dict) and isinstance(raw.get("opId"), str) else None
                prepared.append(("rejected", op_id, {"error": "bad_request", "message": problem}))
            else:
                prepared.append(("op", op))
        outcomes, cursor, epoch = storage.apply_ops(prepared)
        results = []
        for outcome in outcomes:
            if outcome[0] == "rejected":
                results.append({"opId": outcome[1], "status": "rejected", "error": outcome[2]})
            elif outcome[0] == "conflict":
                results.append({"opId": None, "status": "conflict", "current": outcome[1], **({"fields": outcome[2]} if len(outcome) > 2 else {})})
            else:
                results.append({"opId": None, "status": outcome[0], "record": outcome[1]})
        for result, raw in zip(results, prepared):
            if raw[0] == "op":
                result["opId"] = raw[1]["opId"]
        return json_response({"results": results, "cursor": str(cursor), "epoch": epoch})

    def collections_param():
        raw = request.args.get("collections")
        if not raw:
            return None
        names = [c for c in raw.split(",") if c]
        for c in names:
            if not COLLECTION.fullmatch(c):
                raise ApiError(400, "bad_request", "collections must be a comma-separated list of collection names")
        return names

    @bp.get("/sync/pull")
    @counted_as("pull")
    def pull():
        items, cursor, epoch = storage.live_items(collections_param())
        return json_response({"items": items, "cursor": str(cursor), "epoch": epoch})

    @bp.get("/sync/changes")
    @counted_as("changes")
    def changes():
        since = parse_cursor(request.args.get("since", "0") or "0", "since")
        limit_raw = request.args.get("limit", "500")
        if not LIMIT.fullmatch(limit_raw) or not 1 <= int(limit_raw) <= 1000:
            raise ApiError(400, "bad_request", "limit must be an integer from 1 to 1000")
        page, has_more, head, epoch = storage.changes(since, int(limit_raw), collections_param())
        if since > head:
            # No cursor this feed handed out is beyond its head: the client followed another
            # history (typically this database restored from a backup that kept its epoch).
            raise ApiError(410, "cursor_ahead", "since is beyond the end of the change feed; pull in full", epoch=epoch)
        cursor = str(page[-1]["seq"]) if page else str(since)
        return json_response({"changes": page, "cursor": cursor, "hasMore": has_more, "epoch": epoch})

    if testing_endpoints:

        @bp.post("/_test/reset")
        @counted_as("_test")
        def test_reset():
            epoch = storage.reset()
            with state_lock:
                faults["remaining"] = 0
                stats["requests"] = {}
            return json_response({"ok": True, "epoch": epoch})

        @bp.post("/_test/faults")
        @counted_as("_test")
        def test_faults():
            body = read_json()
            if not isinstance(body, dict) or not _is_int(body.get("failNext")) or not _is_int(body.get("status", 500)):
                raise ApiError(400, "bad_request", "send {failNext: int, status: int}")
            with state_lock:
                faults["remaining"] = body["failNext"]
                faults["status"] = body.get("status", 500)
            return json_response({"ok": True})

        @bp.get("/_test/history")
        @counted_as("_test")
        def test_history():
            return json_response({"ops": storage.history()})

        @bp.get("/_test/stats")
        @counted_as("_test")
        def test_stats():
            applied = storage.applied_count()
            with state_lock:
                return json_response({"appliedOps": applied, "requests": dict(stats["requests"])})

    @bp.route("/<path:anything>", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    def unknown(anything):
        raise ApiError(404, "not_found", "no such endpoint")

    return bp


def create_app(db_path, token=None, max_body_bytes=DEFAULT_MAX_BODY, testing_endpoints=False, url_prefix="/api"):
    """A Flask app serving only the sync API under ``url_prefix``, with JSON errors everywhere."""
    app = Flask(__name__)
    app.register_blueprint(
        create_blueprint(db_path, token=token, max_body_bytes=max_body_bytes, testing_endpoints=testing_endpoints),
        url_prefix=url_prefix,
    )
    try:  # Browser apps on another localhost port need CORS; optional dependency.
        from flask_cors import CORS

        CORS(app, allow_headers=["Authorization", "Content-Type", "Accept"], max_age=600)
    except ImportError:  # pragma: no cover
        pass

    register_json_errors(app)
    return app
