"""Runs the reference sync server alone.

    python3 server/app.py --host 127.0.0.1 --port 0 --db /tmp/sync.sqlite3 [--token T] [--testing-endpoints]

With --port 0 a free port is chosen. Once it accepts connections it prints exactly one line,
``LISTENING http://<host>:<port>``, so test harnesses can parse it.
"""

import argparse
import os
import signal
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from werkzeug.serving import make_server  # noqa: E402

from redux_idb_sync_server import DEFAULT_MAX_BODY, create_app  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description="redux-idb-sync reference server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--db", default="redux-idb-sync.sqlite3", help="SQLite database file")
    parser.add_argument("--token", default=os.environ.get("REDUX_IDB_SYNC_TOKEN"), help="require this bearer token")
    parser.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY)
    parser.add_argument("--testing-endpoints", action="store_true", help="enable /api/_test/* (never in production)")
    parser.add_argument("--prefix", default="/api")
    args = parser.parse_args(argv)

    app = create_app(args.db, token=args.token, max_body_bytes=args.max_body_bytes, testing_endpoints=args.testing_endpoints, url_prefix=args.prefix)
    server = make_server(args.host, args.port, app, threaded=True)

    def stop(_signum, _frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"LISTENING http://{args.host}:{server.server_port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
