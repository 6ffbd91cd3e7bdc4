"""Reference server for redux-idb-sync: the protocol of docs/protocol.md as a Flask extension.

    from redux_idb_sync_server import create_app
    app = create_app({"REDUX_IDB_SYNC_DATABASE": "postgresql://127.0.0.1/sync"})

or, in an existing app::

    from redux_idb_sync_server import ReduxIdbSync
    ReduxIdbSync(app)  # reads REDUX_IDB_SYNC_* from app.config

The state (storage, tokens, notifier, auth hook) is in ``app.extensions["redux_idb_sync"]``.
"""

from flask import Config, Flask

from .errors import ApiError, error_code_for, register_json_errors
from .extension import DEFAULT_MAX_BODY, DEFAULTS, EXTENSION_KEY, ReduxIdbSync, SyncState
from .notifier import Notifier
from .routes import PROTOCOL, build_blueprint
from .storage import Storage

__all__ = [
    "ApiError",
    "DEFAULT_MAX_BODY",
    "Notifier",
    "PROTOCOL",
    "ReduxIdbSync",
    "Storage",
    "SyncState",
    "create_app",
    "create_blueprint",
    "error_code_for",
    "register_json_errors",
]

# Keyword arguments of the earlier create_app(db_path, token=..., ...) and their config keys.
_LEGACY = {
    "token": "REDUX_IDB_SYNC_TOKEN",
    "tokens": "REDUX_IDB_SYNC_TOKENS",
    "max_body_bytes": "REDUX_IDB_SYNC_MAX_BODY_BYTES",
    "testing_endpoints": "REDUX_IDB_SYNC_TESTING_ENDPOINTS",
    "url_prefix": "REDUX_IDB_SYNC_URL_PREFIX",
    "authenticate": "REDUX_IDB_SYNC_AUTHENTICATE",
}


def create_app(config=None, **options):
    """The app factory: a Flask app serving only the sync API, with JSON errors everywhere.

    Settings, later ones winning: ``DEFAULTS``; environment variables ``REDUX_IDB_SYNC_*`` (through
    ``from_prefixed_env``, so ``REDUX_IDB_SYNC_TESTING_ENDPOINTS=true`` is a boolean and
    ``REDUX_IDB_SYNC_TOKENS='{"t": "alice"}'`` a dict); ``config`` (a mapping of those keys, or a
    database path/URL); keyword options (``token``, ``tokens``, ``max_body_bytes``,
    ``testing_endpoints``, ``url_prefix``, ``authenticate``).

    Runs under gunicorn as ``gunicorn 'redux_idb_sync_server:create_app()'``.
    """
    app = Flask(__name__)
    app.config.update(DEFAULTS)
    env = Config(app.root_path)
    env.from_prefixed_env("REDUX_IDB_SYNC")
    app.config.update({f"REDUX_IDB_SYNC_{key}": value for key, value in env.items()})
    if isinstance(config, str):
        config = {"REDUX_IDB_SYNC_DATABASE": config}
    if config:
        app.config.update(config)
    for name, value in options.items():
        if name not in _LEGACY:
            raise TypeError(f"create_app() got an unexpected keyword argument {name!r}")
        app.config[_LEGACY[name]] = value

    ReduxIdbSync(app)
    try:  # Browser apps on another localhost port need CORS; optional dependency.
        from flask_cors import CORS

        CORS(app, allow_headers=["Authorization", "Content-Type", "Content-Encoding", "Accept"], max_age=600)
    except ImportError:  # pragma: no cover
        pass

    register_json_errors(app)
    return app


def create_blueprint(db_path, token=None, max_body_bytes=DEFAULT_MAX_BODY, testing_endpoints=False, name="redux_idb_sync", tokens=None, authenticate=None):
    """The sync API as a Blueprint, for an app that does not use the extension's config. Register
    it under any prefix (the client's ``baseUrl``).

    ``db_path``: a SQLite path or a ``postgresql://`` URL.
    ``token``: one bearer token (tenant ``"default"``); ``tokens``: token -> tenant map. With
    either (or ``authenticate``), every endpoint except health requires a token.
    ``max_body_bytes``: larger request bodies get 413.
    ``testing_endpoints``: enables ``/_test/*``.
    """
    state = SyncState(db_path, tokens=tokens, token=token, testing_endpoints=testing_endpoints, max_body_bytes=max_body_bytes, authenticate=authenticate)
    return build_blueprint(state, name=name)
