"""Measures the two ways to give the change feed a cursor that never skips a commit, on real
PostgreSQL with writer PROCESSES (docs/protocol.md, "The cursor rule", quotes the numbers):

- ``locked`` (what the server does): every write transaction first locks its tenant's row;
  seqs are numbered under that lock, so they commit in order. Writers of one tenant wait for
  each other; writers of different tenants do not.
- ``xid8``: no lock; seq from a sequence, and every row carries the xid8 of the transaction that
  wrote it (a trigger sets ``pg_current_xact_id()``). A reader's cursor is a
  ``pg_current_snapshot()``: it reads rows visible in its new snapshot and not in the previous one
  (PgQ's rule), so an out-of-order commit is read on the next pull instead of being skipped.

For each strategy and scenario (all writers in ONE tenant; each writer its own tenant) it runs
W writer processes pushing P pushes of 3 operations each while one reader pulls incrementally,
and prints pushes/s and the reader's check (exactly the full state at the end).

    eval "$(scripts/pg-temp.sh start)"
    PYTHONPATH=server python3 bench/server/feed_strategies.py [--writers 4] [--pushes 300]
"""

import argparse
import multiprocessing
import os
import statistics
import time

import psycopg

from redux_idb_sync_server.storage import Storage

URL = os.environ["REDUX_IDB_SYNC_PG_URL"]


class XidStorage(Storage):
    """No tenant lock; seq from a sequence; rows stamped with their writer's xid8 (a trigger)."""

    def __init__(self, database):
        super().__init__(database)
        with self.backend.write() as tx:
            tx.execute("CREATE SEQUENCE IF NOT EXISTS xid_feed_seq")
            tx.execute("ALTER TABLE items ADD COLUMN IF NOT EXISTS xid xid8")
            tx.execute("CREATE INDEX IF NOT EXISTS items_xid ON items (tenant, xid)")
            tx.execute(
                "CREATE OR REPLACE FUNCTION stamp_xid() RETURNS trigger LANGUAGE plpgsql AS"
                " $$ BEGIN NEW.xid := pg_current_xact_id(); RETURN NEW; END $$"
            )
            tx.execute("DROP TRIGGER IF EXISTS items_stamp_xid ON items")
            tx.execute("CREATE TRIGGER items_stamp_xid BEFORE INSERT OR UPDATE ON items FOR EACH ROW EXECUTE FUNCTION stamp_xid()")

    @staticmethod
    def _lock_tenant(tx, tenant):
        return tx.execute("SELECT head, epoch FROM tenants WHERE tenant = ?", (tenant,)).fetchone()

    @staticmethod
    def _store_head(tx, tenant, head):
        pass

    def _next_seq(self, tx, tenant, head):
        return tx.execute("SELECT nextval('xid_feed_seq')").fetchone()[0]

    def changes_since_snapshot(self, tenant, snapshot):
        """Rows committed after ``snapshot`` (text) and visible now; returns (ids->version, new snapshot)."""
        with self.backend.read() as tx:
            now = tx.execute("SELECT pg_current_snapshot()::text").fetchone()[0]
            if snapshot is None:
                rows = tx.execute("SELECT id, version FROM items WHERE tenant = ?", (tenant,)).fetchall()
            else:
                rows = tx.execute(
                    "SELECT id, version FROM items WHERE tenant = ? AND xid >= pg_snapshot_xmin(?::pg_snapshot)"
                    " AND NOT pg_visible_in_snapshot(xid, ?::pg_snapshot)",
                    (tenant, snapshot, snapshot),
                ).fetchall()
        return dict(rows), now


KINDS = {"locked": Storage, "xid8": XidStorage}


def op(op_id, item_id, force=False):
    return ("op", {"opId": op_id, "collection": "c", "id": item_id, "type": "put", "value": {"v": op_id}, "baseVersion": None, "clientTime": 1, "force": force})


def writer(kind, tenant, w, pushes, go, out):
    storage = KINDS[kind](URL)
    go.wait()
    started = time.perf_counter()
    for p in range(pushes):
        ops = [op(f"{tenant}-{w}-{p}-a", f"{w}-{p}-a"), op(f"{tenant}-{w}-{p}-b", f"{w}-{p}-b")]
        if p:
            ops.append(op(f"{tenant}-{w}-{p}-u", f"{w}-{p - 1}-a", force=True))
        storage.apply_ops(tenant, ops)
    out.put(time.perf_counter() - started)
    storage.close()


def reset():
    with psycopg.connect(URL, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


def run(kind, writers, pushes, shared_tenant):
    reset()
    storage = KINDS[kind](URL)
    tenants = ["t"] * writers if shared_tenant else [f"t{w}" for w in range(writers)]
    for t in set(tenants):
        storage.head(t)
    ctx = multiprocessing.get_context("fork")
    go, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=writer, args=(kind, tenants[w], w, pushes, go, out)) for w in range(writers)]
    for p in procs:
        p.start()
    time.sleep(0.5)
    held, cursor, snapshot = {}, 0, None
    started = time.perf_counter()
    go.set()

    def pull():
        nonlocal cursor, snapshot
        if kind == "locked":
            while True:
                page, more, _h, _e = storage.changes("t", cursor, 1000, None)
                held.update({r["id"]: r["version"] for r in page})
                cursor = page[-1]["seq"] if page else cursor
                if not more:
                    return
        else:
            rows, snapshot = storage.changes_since_snapshot("t", snapshot)
            held.update(rows)

    while any(p.is_alive() for p in procs):
        pull()
        time.sleep(0.002)  # a client pulls after a poke, not in a busy loop
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - started
    pull()
    full = {r["id"]: r["version"] for r in storage.live_items("t", None)[0]}
    storage.close()
    return writers * pushes / elapsed, held == full


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--pushes", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"{args.writers} writer processes x {args.pushes} pushes of 3 ops; median of {args.rounds} rounds; {os.cpu_count()} cores")
    print("| scenario | locked (tenant row lock) | xid8 snapshots | locked / xid8 | reader exact (locked, xid8) |")
    print("| --- | --- | --- | --- | --- |")
    for shared in (True, False):
        results = {"locked": [], "xid8": []}
        for _ in range(args.rounds):  # interleaved, so a busy moment of the machine hits both
            for kind in results:
                results[kind].append(run(kind, args.writers, args.pushes, shared))
        rates = {kind: statistics.median(r[0] for r in rs) for kind, rs in results.items()}
        exact = {kind: all(r[1] for r in rs) for kind, rs in results.items()}
        scenario = "all writers in one tenant" if shared else "one tenant per writer (reader follows one)"
        print(f"| {scenario} | {rates['locked']:.0f} pushes/s | {rates['xid8']:.0f} pushes/s | {rates['locked'] / rates['xid8']:.2f}x | {exact['locked']}, {exact['xid8']} |")


if __name__ == "__main__":
    main()
