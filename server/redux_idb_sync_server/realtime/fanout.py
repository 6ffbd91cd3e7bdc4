"""Where the socket server learns that a tenant's feed advanced.

- PostgreSQL: every API worker runs ``pg_notify('redux_idb_sync_feed', {"tenant", "cursor"?})``
  inside its writing transaction; PostgreSQL delivers it at commit and never for a rollback. One
  ``LISTEN`` connection per socket process therefore hears the commits of every worker on every
  machine, with no broker in between.
- SQLite (the embedded server): the API's in-process notifier calls back after each commit.
"""

import asyncio
import json
import logging

from .server import now_ms

log = logging.getLogger("redux_idb_sync_server.realtime")

CHANNEL = "redux_idb_sync_feed"


def follow_notifier(notifier, realtime):
    """In-process fan-out: subscribes ``realtime`` to the API's notifier. Returns the unsubscribe function."""
    return notifier.subscribe(lambda tenant, cursor: realtime.publish_threadsafe(tenant, cursor, now_ms()))


async def listen_postgres(dsn, realtime, stop, retry_s=(0.2, 5.0)):
    """Follows ``LISTEN redux_idb_sync_feed`` until ``stop`` (an asyncio.Event) is set.

    A lost connection is reopened with backoff; notifications sent meanwhile are lost, so after
    every reconnect each open socket is poked once (its client pulls, and misses nothing)."""
    import psycopg  # the ``postgres`` extra

    delay = retry_s[0]
    first = True
    while not stop.is_set():
        try:
            async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
                await conn.execute(f"LISTEN {CHANNEL}")
                delay = retry_s[0]
                if not first:
                    realtime.poke_everyone()
                first = False
                gen = conn.notifies()
                stopper = asyncio.ensure_future(stop.wait())
                try:
                    while not stop.is_set():
                        nxt = asyncio.ensure_future(gen.__anext__())
                        done, _ = await asyncio.wait({nxt, stopper}, return_when=asyncio.FIRST_COMPLETED)
                        if nxt not in done:
                            nxt.cancel()
                            break
                        _deliver(realtime, nxt.result().payload)
                finally:
                    stopper.cancel()
        except Exception as error:  # noqa: BLE001 - the listener must come back
            if stop.is_set():
                break
            log.warning("LISTEN connection lost (%s); reconnecting in %.1f s", error, delay)
            first = False
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
            except asyncio.TimeoutError:
                pass
            delay = min(retry_s[1], delay * 2)


def _deliver(realtime, payload):
    try:
        body = json.loads(payload)
    except ValueError:
        log.warning("ignoring a malformed %s payload", CHANNEL)
        return
    tenant = body.get("tenant") if isinstance(body, dict) else None
    if not isinstance(tenant, str):
        return
    cursor = body.get("cursor")
    realtime.publish(tenant, cursor if isinstance(cursor, (str, int)) else None, now_ms())


async def poll_heads(seam, realtime, stop, interval_s=0.1):
    """Fan-out for SQLite in a process of its own (no notification crosses processes there): reads
    the feed head of every tenant with open sockets every ``interval_s`` and pokes when it differs
    from the last head those sockets were told. One indexed read per tenant per interval; the
    embedded server needs none of it."""
    while not stop.is_set():
        for tenant in realtime.tenants():
            try:
                head = str(await asyncio.to_thread(seam.feed_head, tenant))
            except Exception:  # noqa: BLE001 - a failed read is retried at the next interval
                log.exception("feed_head failed")
                continue
            known = realtime.announced(tenant)
            if known is not None and known != head:
                realtime.publish(tenant, head, now_ms())
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
        except asyncio.TimeoutError:
            pass
