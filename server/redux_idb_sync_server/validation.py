"""Input rules of docs/protocol.md: strict JSON, well-formed strings, the depth rule, cursors and
operations. Pure functions; nothing here touches storage or Flask."""

import json
import math
import re

from .errors import ApiError
from .merge import malformed_patch

MAX_OPS = 500
MAX_DEPTH = 100
MAX_CLIENT_TIME = 2**53
MAX_CURSOR = 2**63 - 1  # int64, as both backends store seq
# Every pattern is used with fullmatch: "$" would also match before a trailing newline.
COLLECTION = re.compile(r"[A-Za-z0-9_-]{1,64}")
CURSOR = re.compile(r"[0-9]{1,19}")  # ASCII digits only; str.isdigit() also accepts "²"
LIMIT = re.compile(r"[0-9]{1,4}")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# A Python str holds a surrogate code point only when the JSON had an unpaired \uD800-\uDFFF
# escape (paired escapes decode to one character): such a string is not well-formed UTF-16 and
# cannot be stored as text.
SURROGATE = re.compile(r"[\ud800-\udfff]")


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


def depth(value):
    """The depth rule of docs/protocol.md: the largest number of property/index steps from the
    value's root to anything inside it (a primitive, {} or [] is 0; {"a": 1} and [1] are 1).
    Values of depth MAX_DEPTH are accepted, deeper ones refused. Stops counting past MAX_DEPTH, and
    is iterative, so a hostile body cannot overflow our stack."""
    deepest = 0
    stack = [(value, 0)]
    while stack:
        current, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        if isinstance(current, dict):
            stack.extend((v, level + 1) for v in current.values())
        elif isinstance(current, list):
            stack.extend((v, level + 1) for v in current)
    return deepest


def is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def utf16_length(text):
    """The length as JavaScript counts it: UTF-16 code units (a character beyond U+FFFF is two)."""
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)


def bad_string(value, name, max_len):
    """Why ``value`` is not a well-formed string of 1 to ``max_len`` UTF-16 code units, or None."""
    if not isinstance(value, str) or not 1 <= utf16_length(value) <= max_len:
        return f"{name} must be a string of 1 to {max_len} characters"
    if SURROGATE.search(value):
        return f"{name} must be well-formed UTF-16 (no unpaired surrogates)"
    return None


def validate_id(item_id):
    problem = bad_string(item_id, "id", 512)
    if problem:
        return problem
    if CONTROL.search(item_id):
        return "id must not contain control characters"
    return None


def check_collection(collection):
    if not isinstance(collection, str) or not COLLECTION.fullmatch(collection):
        raise ApiError(400, "bad_request", "collection must match ^[A-Za-z0-9_-]{1,64}$")


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


def parse_limit(raw):
    if not LIMIT.fullmatch(raw) or not 1 <= int(raw) <= 1000:
        raise ApiError(400, "bad_request", "limit must be an integer from 1 to 1000")
    return int(raw)


def parse_collections(raw):
    """The ``collections`` query parameter: a comma-separated list of names, or None for all."""
    if not raw:
        return None
    names = [c for c in raw.split(",") if c]
    for c in names:
        if not COLLECTION.fullmatch(c):
            raise ApiError(400, "bad_request", "collections must be a comma-separated list of collection names")
    return names


def parse_changes_body(raw):
    """The body of ``POST /sync/changes`` (protocol 4): ``{"since"?, "limit"?, "collections"?}``,
    the same parameters as the query of ``GET /sync/changes``. Returns ``(since, limit, collections)``."""
    if not isinstance(raw, dict):
        raise ApiError(400, "bad_request", "the body must be an object")
    since = raw.get("since", "0")
    if not isinstance(since, str):
        raise ApiError(400, "bad_request", "since must be a cursor string returned by the server")
    limit = raw.get("limit", 500)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
        raise ApiError(400, "bad_request", "limit must be an integer from 1 to 1000")
    collections = raw.get("collections")
    if collections is not None:
        if not isinstance(collections, list) or not all(isinstance(c, str) and COLLECTION.fullmatch(c) for c in collections):
            raise ApiError(400, "bad_request", "collections must be a list of collection names")
    return parse_cursor(since or "0", "since"), limit, collections or None


def validate_op(raw, defaults=None):
    """Returns (op, None) or (None, problem)."""
    if not isinstance(raw, dict):
        return None, "operation must be an object"
    op = {**(defaults or {}), **raw}
    op_id = op.get("opId")
    problem = bad_string(op_id, "opId", 128)
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
    if base is not None and not (is_int(base) and base >= 0):
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
    if depth(value) > MAX_DEPTH:
        return None, f"value is nested deeper than {MAX_DEPTH}"
    patch = base_fields = None
    if kind == "patch":
        patch, base_fields = op.get("patch"), op.get("base")
        problem = malformed_patch(patch, base_fields)
        if problem:
            return None, f"malformed patch: {problem}"
        if depth(patch) > MAX_DEPTH or depth(base_fields) > MAX_DEPTH:
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


def validate_push(body):
    """The push envelope: returns the list of ``("op", op)`` / ``("rejected", opId, error)``."""
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "body must be a JSON object")
    problem = bad_string(body.get("clientId"), "clientId", 128)
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
    return prepared


def validate_item_write(method, collection, item_id, body):
    """A single-item PUT/DELETE body: collection, id and type come from the path and method."""
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "body must be a JSON object")
    from_path = {"collection": collection, "id": item_id, "type": "put" if method == "PUT" else "delete"}
    for field, expected in from_path.items():
        if field in body and body[field] != expected:
            raise ApiError(400, "bad_request", f"{field} comes from the path and method; the body names another")
    op, problem = validate_op(body, from_path)
    if problem:
        raise ApiError(400, "bad_request", problem)
    return op
