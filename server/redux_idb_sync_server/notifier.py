"""In-process fan-out of "this tenant's feed advanced" (the real-time channel's source).

The extension publishes after every committed write that advanced a tenant's feed (and after a
reset), never for a rolled-back one. Subscribers run in the publishing thread: keep them quick
(hand the message to an event loop with ``call_soon_threadsafe``). Across processes this reaches
nobody: with PostgreSQL the writing transaction also sends ``pg_notify('redux_idb_sync_feed',
{"tenant", "cursor"})``, which PostgreSQL delivers on commit to every listener.
"""

import logging
import threading

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self):
        self._lock = threading.Lock()
        self._subscribers = []

    def subscribe(self, callback):
        """Calls ``callback(tenant, cursor)`` for every publish; returns a function that unsubscribes."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe():
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def publish(self, tenant, cursor):
        """``cursor``: the tenant's new feed head (a string), or None when not known."""
        with self._lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(tenant, cursor)
            except Exception:  # one failing subscriber must not fail a committed write's answer
                log.exception("a feed subscriber failed")
