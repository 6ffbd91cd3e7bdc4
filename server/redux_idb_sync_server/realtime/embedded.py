"""Runs the socket server on a thread beside the embedded (SQLite) Flask server, sharing its notifier."""

import asyncio
import threading

from .fanout import follow_notifier
from .server import RealtimeServer


def start_in_thread(seam, notifier, host="127.0.0.1", port=0, heartbeat_ms=15000):
    """Starts the socket server on its own event loop thread. Returns ``(port, stop)``."""
    ready = threading.Event()
    state = {}

    def run():
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        realtime = RealtimeServer(seam, heartbeat_ms=heartbeat_ms)
        state["port"] = loop.run_until_complete(realtime.start(host, port))
        state["loop"] = loop
        state["realtime"] = realtime
        state["unsubscribe"] = follow_notifier(notifier, realtime)
        ready.set()
        loop.run_forever()
        loop.run_until_complete(realtime.close())
        loop.close()

    thread = threading.Thread(target=run, name="redux-idb-sync-realtime", daemon=True)
    thread.start()
    ready.wait(10)

    def stop():
        state["unsubscribe"]()
        state["loop"].call_soon_threadsafe(state["loop"].stop)
        thread.join(5)

    return state["port"], stop
