"""The protocol's routes (docs/protocol.md) as a Blueprint bound to one ``SyncState``.

Every view reads the tenant that ``guard`` resolved (``g.redux_idb_sync_tenant``) and passes it to
storage: there is no route that reads or writes without one.
"""

from flask import Blueprint, current_app, g, request
from werkzeug.exceptions import HTTPException

from . import testing
from .compression import BodyTooLarge, CorruptBody, UnsupportedEncoding, compress, decode_body
from .errors import ApiError, api_error_response, error_response, http_error_response, json_response, unauthorized
from .storage import now_ms
from .tokens import DEFAULT_TENANT
from .validation import (
    NotStrictJson,
    check_collection,
    loads_strict,
    parse_changes_body,
    parse_collections,
    parse_cursor,
    parse_limit,
    validate_id,
    validate_item_write,
    validate_push,
)

# 3: patch operations with field-level merge, gzip request bodies (docs/protocol.md, "Version 3").
# 4: POST /sync/changes, the incremental pull at one URL, so browsers preflight it once
#    (docs/protocol.md, "Version 4").
PROTOCOL = 4
EXTENSION_KEY = "redux_idb_sync"


def tenant():
    return g.redux_idb_sync_tenant


def read_json(max_body_bytes):
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


def build_blueprint(state, name="redux_idb_sync"):
    """The sync API for ``state`` (a ``SyncState``). Registering it stores ``state`` in
    ``app.extensions["redux_idb_sync"]``."""
    bp = Blueprint(name, __name__)
    storage = state.storage

    @bp.record_once
    def remember(setup):
        setup.app.extensions[EXTENSION_KEY] = state

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

    def body():
        return read_json(state.max_body_bytes)

    @bp.before_request
    def guard():
        name_ = endpoint_name()
        who = state.authenticate(request)
        g.redux_idb_sync_tenant = who
        if state.testing_endpoints:
            counted_for = who
            if counted_for is None and name_ == "_test" and "Authorization" not in request.headers:
                counted_for = DEFAULT_TENANT
            storage.count_request(counted_for or DEFAULT_TENANT, name_)
        # CORS preflights carry no credentials; health answers everyone (with the epoch of the
        # caller's tenant when it authenticates).
        if request.method == "OPTIONS" or name_ == "health":
            return None
        if name_ == "_test":
            # Exempt from auth (they exist only when enabled), but scoped like everything else:
            # a valid token acts on its tenant, no token on the default tenant, a bad one is 401.
            if who is None:
                if "Authorization" in request.headers:
                    raise unauthorized()
                g.redux_idb_sync_tenant = DEFAULT_TENANT
            return None
        if who is None:
            raise unauthorized()
        if state.testing_endpoints:
            status = storage.take_fault(who)
            if status is not None:
                return error_response(status, "injected", f"injected failure ({status})")
        return None

    @bp.errorhandler(ApiError)
    def api_error(error):
        return api_error_response(error)

    @bp.after_request
    def compress_answer(response):
        # Pull pages and push answers are large and repetitive: gzip them for clients that accept it.
        if response.direct_passthrough or response.headers.get("Content-Encoding") or response.mimetype != "application/json":
            return response
        body_, encoding = compress(response.get_data(), request.headers.get("Accept-Encoding"))
        if encoding:
            response.set_data(body_)
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
        answer = {"status": "ok", "serverTime": now_ms(), "protocol": PROTOCOL}
        if tenant() is not None:
            answer["epoch"] = storage.epoch(tenant())
        return json_response(answer)

    def write_one(method, collection, item_id):
        op = validate_item_write(method, collection, item_id, body())
        outcomes, _cursor, _epoch = state.apply_ops(tenant(), [("op", op)])
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
        check_collection(collection)
        problem = validate_id(item_id)
        if problem:
            raise ApiError(400, "bad_request", problem)
        if request.method == "GET":
            record = storage.get(tenant(), collection, item_id)
            if record is None:
                raise ApiError(404, "not_found", "no such item")
            return json_response(record)
        return write_one(request.method, collection, item_id)

    @bp.post("/sync/push")
    @counted_as("push")
    def push():
        prepared = validate_push(body())
        outcomes, cursor, epoch = state.apply_ops(tenant(), prepared)
        results = []
        for outcome, raw in zip(outcomes, prepared):
            if outcome[0] == "rejected":
                results.append({"opId": outcome[1], "status": "rejected", "error": outcome[2]})
            elif outcome[0] == "conflict":
                fields = {"fields": outcome[2]} if len(outcome) > 2 else {}  # a patch's clashing fields
                results.append({"opId": raw[1]["opId"], "status": "conflict", "current": outcome[1], **fields})
            else:
                results.append({"opId": raw[1]["opId"], "status": outcome[0], "record": outcome[1]})
        return json_response({"results": results, "cursor": str(cursor), "epoch": epoch})

    @bp.get("/sync/pull")
    @counted_as("pull")
    def pull():
        collections = parse_collections(request.args.get("collections"))
        if request.args.get("limit") is not None:
            # Protocol 3: the most recent items first, for a new device (docs/protocol.md).
            items, total, head, epoch = storage.recent_items(tenant(), collections, parse_limit(request.args["limit"]))
            return json_response({"items": items, "cursor": str(head), "epoch": epoch, "total": total, "hasMore": total > len(items)})
        items, cursor, epoch = storage.live_items(tenant(), collections)
        return json_response({"items": items, "cursor": str(cursor), "epoch": epoch})

    @bp.route("/sync/changes", methods=["GET", "POST"])
    @counted_as("changes")
    def changes():
        if request.method == "POST":
            # Protocol 4: the same parameters in a JSON body, so the URL never changes.
            since, limit, collections = parse_changes_body(body())
        else:
            since = parse_cursor(request.args.get("since", "0") or "0", "since")
            limit = parse_limit(request.args.get("limit", "500"))
            collections = parse_collections(request.args.get("collections"))
        # The rule (and its 410 cursor_ahead) is the extension's: the socket's pull answers with it too.
        return json_response(state.changes_page(tenant(), since, limit, collections))

    if state.testing_endpoints:
        testing.register(bp, state, counted_as("_test"), body, tenant)

    @bp.route("/<path:anything>", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    def unknown(anything):
        raise ApiError(404, "not_found", "no such endpoint")

    return bp
