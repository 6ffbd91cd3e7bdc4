"""``gunicorn redux_idb_sync_server.wsgi:app``: the app, configured from ``REDUX_IDB_SYNC_*``."""

from . import create_app

app = create_app()
