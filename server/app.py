"""Runs the reference sync server alone.

    python3 server/app.py --host 127.0.0.1 --port 0 --db /tmp/sync.sqlite3 [--token T] [--testing-endpoints]
    python3 server/app.py --db postgresql://user@127.0.0.1:5432/sync --tokens '{"t1": "alice"}'
    python3 server/app.py --rotate-epoch --db /tmp/sync.sqlite3

Werkzeug's threaded server, for development and tests: in production run the same app under
gunicorn (``gunicorn -w 4 'redux_idb_sync_server:create_app()'``, see server/README.md). Every
setting can also come from ``REDUX_IDB_SYNC_*`` environment variables; options win.

``--rotate-epoch`` gives the database a new epoch (keeping its data), prints it and exits: run it
after restoring a backup, so that clients pull in full instead of trusting their cursors.

With --port 0 a free port is chosen. Once it accepts connections it prints exactly one line,
``LISTENING http://<host>:<port>``, so test harnesses can parse it.
"""

import argparse
import json
import os
import signal
import sys
import threading

from werkzeug.serving import WSGIRequestHandler, make_server

# Run as a script, Python puts this file's directory (server/) first on sys.path, so the package
# beside it is found without being installed; installed (pip install ./server), it is found anyway.
from redux_idb_sync_server import DEFAULT_MAX_BODY, Storage, create_app, error_code_for


class JsonErrorRequestHandler(WSGIRequestHandler):
    """Errors the HTTP server answers itself, before Flask sees the request (414 for an
    over-long request line, 400 for a malformed one, 431 for huge headers), are JSON too."""

    def send_error(self, code, message=None, explain=None):
        short = self.responses.get(code, ("error", ""))[0]
        body = json.dumps({"error": error_code_for(code), "message": message or short}).encode()
        self.log_error("code %d, message %s", code, message or short)
        self.send_response(code, message)
        self.send_header("Connection", "close")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def make_json_server(host, port, app):
    return make_server(host, port, app, threaded=True, request_handler=JsonErrorRequestHandler)


def main(argv=None):
    parser = argparse.ArgumentParser(description="redux-idb-sync reference server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument(
        "--db",
        "--database",
        dest="db",
        default=os.environ.get("REDUX_IDB_SYNC_DATABASE", "redux-idb-sync.sqlite3"),
        help="a SQLite database file, or a postgresql:// URL",
    )
    parser.add_argument("--token", default=os.environ.get("REDUX_IDB_SYNC_TOKEN"), help="require this bearer token (tenant 'default')")
    parser.add_argument("--tokens", default=None, help='JSON: token -> tenant, or token -> {"tenant", "expires_at"}')
    parser.add_argument("--max-body-bytes", type=int, default=None, help=f"default {DEFAULT_MAX_BODY}")
    parser.add_argument("--testing-endpoints", action="store_true", help="enable /api/_test/* (never in production)")
    parser.add_argument("--prefix", default=None, help="the API's URL prefix (default /api)")
    parser.add_argument("--rotate-epoch", action="store_true", help="give --db a new epoch (after restoring a backup), print it and exit")
    args = parser.parse_args(argv)

    if args.rotate_epoch:
        if not args.db.startswith(("postgresql://", "postgres://")) and not os.path.isfile(args.db):
            parser.error(f"--rotate-epoch: no database at {args.db}")
        print(f"EPOCH {Storage(args.db).rotate_epoch()}", flush=True)
        return 0

    given = {"token": args.token, "tokens": args.tokens, "max_body_bytes": args.max_body_bytes, "url_prefix": args.prefix}
    options = {name: value for name, value in given.items() if value is not None}
    if args.testing_endpoints:
        options["testing_endpoints"] = True
    app = create_app(args.db, **options)
    server = make_json_server(args.host, args.port, app)

    def stop(_signum, _frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"LISTENING http://{args.host}:{server.server_port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
