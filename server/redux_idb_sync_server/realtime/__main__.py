"""Runs the socket server as its own process, beside the API workers:

    python3 -m redux_idb_sync_server.realtime --port 8765 --database postgresql://... [--tokens JSON]

It reads the same settings as the API (``REDUX_IDB_SYNC_*`` environment variables, or the flags
below), follows ``LISTEN redux_idb_sync_feed`` on PostgreSQL, and prints exactly one line,
``LISTENING ws://<host>:<port>``, once it accepts connections. SQLite has no cross-process
notification: this process then reads the feed head of each tenant with open sockets every
``--poll-ms`` (the embedded ``python3 server/app.py --realtime-port 8765`` needs no polling: it
hears the API's commits in-process).
"""

import argparse
import asyncio
import logging
import os
import signal
import sys

from .. import create_app
from .fanout import listen_postgres, poll_heads
from .server import RealtimeServer


def main(argv=None):
    parser = argparse.ArgumentParser(description="redux-idb-sync real-time socket server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--db", "--database", dest="db", default=os.environ.get("REDUX_IDB_SYNC_DATABASE"), help="the API's postgresql:// URL")
    parser.add_argument("--token", default=None, help="the API's single bearer token (tenant 'default')")
    parser.add_argument("--tokens", default=None, help='JSON: token -> tenant, or token -> {"tenant", "expires_at"}')
    parser.add_argument("--heartbeat-ms", type=int, default=15000, help="how often clients ping (sent in ready)")
    parser.add_argument("--poll-ms", type=int, default=100, help="SQLite only: how often to read the feed heads")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    if not args.db:
        parser.error("--database (or REDUX_IDB_SYNC_DATABASE) is required: the API's postgresql:// URL or SQLite file")
    postgres = args.db.startswith(("postgresql://", "postgres://"))
    options = {name: value for name, value in {"token": args.token, "tokens": args.tokens}.items() if value is not None}
    app = create_app(args.db, **options)
    seam = app.extensions["redux_idb_sync"]

    async def run():
        realtime = RealtimeServer(seam, heartbeat_ms=args.heartbeat_ms)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        port = await realtime.start(args.host, args.port)
        follow = listen_postgres(args.db, realtime, stop) if postgres else poll_heads(seam, realtime, stop, args.poll_ms / 1000)
        listener = asyncio.ensure_future(follow)
        print(f"LISTENING ws://{args.host}:{port}", flush=True)
        await stop.wait()
        await realtime.close()
        await listener

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
