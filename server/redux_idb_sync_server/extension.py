"""The Flask extension: ``ReduxIdbSync`` and the per-app state it keeps in
``app.extensions["redux_idb_sync"]``.

    app = Flask(__name__)
    app.config["REDUX_IDB_SYNC_DATABASE"] = "postgresql://sync@127.0.0.1/sync"
    app.config["REDUX_IDB_SYNC_TOKENS"] = {"s3cret": "alice"}
    ReduxIdbSync(app)                      # or: sync = ReduxIdbSync(); sync.init_app(app)
    state = app.extensions["redux_idb_sync"]
    state.tenant_for_token("s3cret")       # "alice", without a request (the socket process)
"""

from .errors import ApiError
from .routes import build_blueprint
from .storage import Storage
from .notifier import Notifier
from .tokens import DEFAULT_TENANT, is_live, lookup, parse_tokens

DEFAULT_MAX_BODY = 2 * 1024 * 1024
EXTENSION_KEY = "redux_idb_sync"

#: Configuration keys and their defaults (``app.config``; the environment variables of the same
#: names are read by ``create_app`` through ``from_prefixed_env``).
DEFAULTS = {
    "REDUX_IDB_SYNC_DATABASE": "redux-idb-sync.sqlite3",  # a SQLite path or a postgresql:// URL
    "REDUX_IDB_SYNC_TOKENS": None,  # JSON or dict: token -> tenant | {"tenant", "expires_at"}
    "REDUX_IDB_SYNC_TOKEN": None,  # legacy: one token, tenant "default"
    "REDUX_IDB_SYNC_TESTING_ENDPOINTS": False,  # /_test/* (never in production)
    "REDUX_IDB_SYNC_MAX_BODY_BYTES": DEFAULT_MAX_BODY,
    "REDUX_IDB_SYNC_URL_PREFIX": "/api",
    "REDUX_IDB_SYNC_AUTHENTICATE": None,  # callable(request) -> tenant | None, replaces the token check
}


class SyncState:
    """What one app's sync API holds: the storage, the tokens, the notifier and the auth hook.

    Everything here is usable without a Flask request or app context (the socket process uses
    ``tenant_for_token``, ``feed_head``, ``changes_page``, ``count_request`` and ``notifier``).
    """

    def __init__(
        self,
        database,
        tokens=None,
        token=None,
        testing_endpoints=False,
        max_body_bytes=DEFAULT_MAX_BODY,
        authenticate=None,
        storage=None,
    ):
        # from_prefixed_env parses values as JSON: a numeric token or path arrives as a number.
        self.storage = storage or Storage(str(database))
        self.tokens = parse_tokens(tokens, str(token) if token is not None else None)
        self.testing_endpoints = bool(testing_endpoints)
        self.max_body_bytes = int(max_body_bytes)
        self.notifier = Notifier()
        self._authenticate = authenticate

    @property
    def auth_required(self):
        """Whether requests need a token: yes when tokens are configured or a hook is installed.
        Without either, the server is open and every request belongs to tenant ``"default"``."""
        return bool(self.tokens) or self._authenticate is not None

    def tenant_for_token(self, token):
        """The tenant of a bearer token that is configured or was issued (and has not expired), else None."""
        if not isinstance(token, str) or not token:
            return None
        spec = lookup(self.tokens, token)
        if spec is None:
            spec = self.storage.token_tenant(token)
        if spec is None or not is_live(spec[1]):
            return None
        return spec[0]

    def authenticate(self, request):
        """The tenant a request acts for, or None (401). The hook given as ``authenticate`` (or
        ``REDUX_IDB_SYNC_AUTHENTICATE``) replaces the default, which reads ``Authorization: Bearer
        <token>`` and calls ``tenant_for_token``."""
        if self._authenticate is not None:
            return self._authenticate(request)
        if not self.auth_required:
            return DEFAULT_TENANT
        header = request.headers.get("Authorization", "")
        return self.tenant_for_token(header[7:]) if header.startswith("Bearer ") else None

    def feed_head(self, tenant):
        """The tenant's feed cursor: what ``GET /sync/changes`` hands back after reading everything."""
        return str(self.storage.head(tenant)[0])

    def changes_page(self, tenant, since, limit, collections):
        """One page of the tenant's change feed after ``since`` (an int cursor), at most ``limit``
        changes of ``collections`` (None: all): the answer of ``/sync/changes`` as a dict
        ``{"changes", "cursor", "hasMore", "epoch"}``. Raises ``ApiError`` 410 ``cursor_ahead``
        (with the epoch) when ``since`` is beyond the feed's head. The HTTP route and the socket
        server's ``pull`` both answer with this."""
        page, has_more, head, epoch = self.storage.changes(tenant, since, limit, collections)
        if since > head:
            # No cursor this feed handed out is beyond its head: the client followed another
            # history (typically this database restored from a backup that kept its epoch), or
            # holds another tenant's cursor.
            raise ApiError(410, "cursor_ahead", "since is beyond the end of the change feed; pull in full", epoch=epoch)
        cursor = str(page[-1]["seq"]) if page else str(since)
        return {"changes": page, "cursor": cursor, "hasMore": has_more, "epoch": epoch}

    def count_request(self, tenant, endpoint):
        """Counts a request of ``tenant`` under ``endpoint`` in ``/_test/stats`` when the testing
        endpoints are on (the socket server counts its pulls here); otherwise does nothing, and
        writes nothing."""
        if self.testing_endpoints:
            self.storage.count_request(tenant, endpoint)

    # ---------------------------------------------------------------- the one write path

    def apply_ops(self, tenant, ops):
        """Applies validated operations for ``tenant`` (see ``Storage.apply_ops``) and, once
        committed, publishes the new head if the feed advanced. Every route that writes calls this."""
        results, cursor, epoch, advanced = self.storage.apply_ops(tenant, ops)
        if advanced:
            self.notifier.publish(tenant, str(cursor))
        return results, cursor, epoch

    def reset(self, tenant):
        epoch = self.storage.reset(tenant)
        self.notifier.publish(tenant, "0")
        return epoch


class ReduxIdbSync:
    """Mounts the sync API on an app and keeps its state in ``app.extensions["redux_idb_sync"]``.

    ``authenticate``: ``callable(request) -> tenant | None`` (None answers 401); replaces the
    token check. Settings come from ``app.config`` (see ``DEFAULTS``).
    """

    def __init__(self, app=None, authenticate=None):
        self._authenticate = authenticate
        if app is not None:
            self.init_app(app)

    def init_app(self, app):
        for key, value in DEFAULTS.items():
            app.config.setdefault(key, value)
        config = app.config
        state = SyncState(
            config["REDUX_IDB_SYNC_DATABASE"],
            tokens=config["REDUX_IDB_SYNC_TOKENS"],
            token=config["REDUX_IDB_SYNC_TOKEN"],
            testing_endpoints=config["REDUX_IDB_SYNC_TESTING_ENDPOINTS"],
            max_body_bytes=config["REDUX_IDB_SYNC_MAX_BODY_BYTES"],
            authenticate=self._authenticate or config["REDUX_IDB_SYNC_AUTHENTICATE"],
        )
        app.register_blueprint(build_blueprint(state), url_prefix=config["REDUX_IDB_SYNC_URL_PREFIX"])
        return state

    @staticmethod
    def state(app):
        return app.extensions[EXTENSION_KEY]
