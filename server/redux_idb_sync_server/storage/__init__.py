"""Storage for the sync protocol (docs/protocol.md): the rules, written once, above two backends.

Rules this module keeps, whatever the backend:

- Everything is scoped by **tenant**: items, the idempotency records, the feed, the epoch, the
  testing state. No query here runs without ``tenant = ?``.
- An operation's effect and its decided result (keyed by tenant and opId) are written in the same
  transaction, so a replayed opId is answered from the stored result and never applied twice.
- **The feed never skips a commit.** Every write transaction starts by locking its tenant's row
  in ``tenants`` (``SELECT ... FOR UPDATE``): writers of one tenant are
  serialised by the database (a row lock in PostgreSQL, the single writer lock in SQLite), across
  threads, processes and machines. ``seq`` is that tenant's ``head + 1`` taken under the lock and
  the new head is written in the same transaction, so a tenant's seqs commit in the order they
  are numbered: a reader that has seen seq n has seen every seq below n. (A seq drawn from a
  sequence outside the lock can commit out of order, and a ``seq > cursor`` reader then skips
  it forever; ``server/tests/test_feed_concurrency.py`` shows both. docs/protocol.md explains the
  choice against a commit-ordered xid8 cursor.)
- Deletes leave tombstones, so incremental pulls can report them.
- A tenant's ``epoch`` names its history. It is made with the tenant's row and replaced by a reset
  of that tenant, or for every tenant by an operator restoring a backup (``rotate_epoch``). Every
  answer reads it in the same transaction as its data.

A backend (``sqlite.SqliteBackend``, ``postgres.PostgresBackend``) gives transactions and a few
dialect details; it knows nothing of the protocol.
"""

import json
import secrets
import time
import uuid

from ..merge import merge_patch_onto, pointer

__all__ = ["Storage", "open_backend", "now_ms", "new_epoch"]


def new_epoch():
    return uuid.uuid4().hex


def now_ms():
    return int(time.time() * 1000)


def _dump(value):
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


_COLUMNS = "collection, id, version, updated_at, client_time, deleted, value, seq, op_id"


def open_backend(database):
    """A backend for ``database``: a ``postgresql://`` (or ``postgres://``) URL, else a SQLite path."""
    if isinstance(database, str) and database.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresBackend

        return PostgresBackend(database)
    from .sqlite import SqliteBackend

    return SqliteBackend(database)


class Storage:
    """The protocol's storage, on a SQLite path or a PostgreSQL URL (see ``open_backend``).

    Stateless between calls: every method is one transaction, so any number of threads and
    processes may share one database.
    """

    def __init__(self, database, backend=None):
        self.backend = backend or open_backend(database)
        self.kind = self.backend.kind
        self.backend.create_schema()
        self._known_tenants = set()

    def close(self):
        self.backend.close()

    # -------------------------------------------------------------- helpers

    def _record(self, row):
        collection, item_id, version, updated_at, client_time, deleted, value, seq, op_id = row
        return {
            "collection": collection,
            "id": item_id,
            "version": version,
            "updatedAt": updated_at,
            "clientTime": client_time,
            "deleted": bool(deleted),
            "value": None if deleted else json.loads(value),
            "seq": seq,
            "opId": self.backend.decode_key(op_id),
        }

    def _ensure_tenant(self, tenant):
        """Makes the tenant's row (an empty feed with a new epoch) unless it exists. Its own short
        transaction, before any read snapshot is taken. The set of tenants seen is only a cache
        that saves the round trip: the row itself is the truth, and never deleted."""
        if tenant in self._known_tenants:
            return
        with self.backend.statements() as tx:
            tx.execute(
                "INSERT INTO tenants (tenant, head, epoch) VALUES (?, 0, ?) ON CONFLICT (tenant) DO NOTHING",
                (tenant, new_epoch()),
            )
        self._known_tenants.add(tenant)

    @staticmethod
    def _tenant_row(tx, tenant):
        """``(head, epoch)`` of a tenant (whose row exists: see ``_ensure_tenant``)."""
        row = tx.execute("SELECT head, epoch FROM tenants WHERE tenant = ?", (tenant,)).fetchone()
        return row[0], row[1]

    @staticmethod
    def _lock_tenant(tx, tenant):
        """Takes the tenant's write lock (its ``tenants`` row) until the transaction ends; returns
        ``(head, epoch)`` as of the lock. In PostgreSQL (``SELECT ... FOR UPDATE``, a row lock
        that writes no tuple) a second writer of the tenant waits here
        until the first commits, and then reads its head; in SQLite ``BEGIN IMMEDIATE`` already
        holds the database's one writer lock."""
        row = tx.execute(f"SELECT head, epoch FROM tenants WHERE tenant = ?{tx.for_update}", (tenant,)).fetchone()
        return row[0], row[1]

    @staticmethod
    def _store_head(tx, tenant, head):
        """Writes the tenant's new head, in the transaction that holds its lock."""
        tx.execute("UPDATE tenants SET head = ? WHERE tenant = ?", (head, tenant))

    def _next_seq(self, tx, tenant, head):
        """The seq of the next applied write: the head under the tenant lock, plus one."""
        return head + 1

    def _before_commit(self, tx, tenant):
        """Called inside every write transaction just before it commits (a hook for tests)."""

    # -------------------------------------------------------------- writes

    def apply_ops(self, tenant, ops):
        """Applies operations in order, in one transaction under the tenant's lock.

        ``ops`` holds ``("op", op)`` validated operations, or ``("rejected", opId, error)``
        tuples, which are passed through. Returns ``(results, cursor, epoch, advanced)``: one result
        per operation (``("applied" | "duplicate", record)`` or ``("conflict", current_or_None)``),
        the tenant's feed head and epoch as of the commit, and whether anything was applied.

        This is the one write path: single-item writes come here too.
        """
        self._ensure_tenant(tenant)
        with self.backend.write() as tx:
            head, epoch = self._lock_tenant(tx, tenant)
            start = head
            results = []
            for op in ops:
                result, head = self._apply_one(tx, tenant, op, head)
                results.append(result)
            advanced = head != start
            if advanced:
                self._store_head(tx, tenant, head)
                tx.notify(tenant, str(head))
            self._before_commit(tx, tenant)
        return results, head, epoch, advanced

    def _apply_one(self, tx, tenant, op, head):
        """One operation inside the push's transaction. No savepoint is needed: a conflict is
        decided before anything is written, and any error fails the whole push (rolled back,
        answered 500, retried by the client with the same opIds)."""
        if op[0] == "rejected":
            return op, head
        op = op[1]
        key = self.backend.encode_key(op["opId"])
        done = tx.execute("SELECT record FROM decided_ops WHERE tenant = ? AND op_id = ?", (tenant, key)).fetchone()
        if done:
            return ("duplicate", json.loads(done[0])), head
        row = tx.execute(
            f"SELECT {_COLUMNS} FROM items WHERE tenant = ? AND collection = ? AND id = ?",
            (tenant, op["collection"], op["id"]),
        ).fetchone()
        current = self._record(row) if row else None
        current_version = current["version"] if current else 0
        base = op["baseVersion"] or 0
        value = op["value"]
        if op["type"] == "patch":
            # A patch merges onto what the server has, at field level, whatever the base version
            # (docs/protocol.md, "Patches"); there must be an item to patch. Conflicts are not
            # stored as decided: the client may retry after deciding.
            if current is None or current["deleted"]:
                return ("conflict", current, []), head
            value, clashes = merge_patch_onto(current["value"], op["patch"], op["base"], force=op["force"])
            if clashes:
                return ("conflict", current, [pointer(path) for path in clashes]), head
        elif not op["force"] and base != current_version:
            # Conflicts are not stored as decided: the client may retry after rebasing.
            return ("conflict", current), head
        seq = self._next_seq(tx, tenant, head)
        deleted = op["type"] == "delete"
        record = {
            "collection": op["collection"],
            "id": op["id"],
            "version": current_version + 1,
            "updatedAt": now_ms(),
            "clientTime": op["clientTime"],
            "deleted": deleted,
            "value": None if deleted else value,
            "seq": seq,
            "opId": op["opId"],
        }
        tx.execute(
            f"INSERT INTO items (tenant, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (tenant, collection, id) DO UPDATE SET version = excluded.version,"
            " updated_at = excluded.updated_at, client_time = excluded.client_time, deleted = excluded.deleted,"
            " value = excluded.value, seq = excluded.seq, op_id = excluded.op_id",
            (
                tenant,
                record["collection"],
                record["id"],
                record["version"],
                record["updatedAt"],
                record["clientTime"],
                1 if deleted else 0,
                None if deleted else _dump(value),
                seq,
                key,
            ),
        )
        tx.execute(
            "INSERT INTO decided_ops (tenant, op_id, seq, record) VALUES (?, ?, ?, ?)",
            (tenant, key, seq, _dump(record)),
        )
        return ("applied", record), max(head, seq)

    def reset(self, tenant):
        """Wipes one tenant (data and testing state). A wiped feed is a new one: returns its new epoch."""
        epoch = new_epoch()
        self._ensure_tenant(tenant)
        with self.backend.write() as tx:
            self._lock_tenant(tx, tenant)
            for table in ("items", "decided_ops", "test_faults", "test_stats"):
                tx.execute(f"DELETE FROM {table} WHERE tenant = ?", (tenant,))
            tx.execute("UPDATE tenants SET head = 0, epoch = ? WHERE tenant = ?", (epoch, tenant))
            tx.notify(tenant, "0")
        return epoch

    def rotate_epoch(self, tenant=None):
        """Gives every tenant (or one) a new epoch, keeping the data; returns the (last) new one.
        Run it after restoring a backup, so clients see that the history they followed is gone
        and pull in full. A database with no tenant yet gets the ``default`` tenant."""
        with self.backend.write() as tx:
            tenants = [tenant] if tenant else [r[0] for r in tx.execute("SELECT tenant FROM tenants").fetchall()]
            if not tenants:
                tenants = ["default"]
                tx.execute("INSERT INTO tenants (tenant, head, epoch) VALUES ('default', 0, ?)", (new_epoch(),))
            epoch = None
            for name in tenants:
                self._lock_tenant(tx, name)
                epoch = new_epoch()
                tx.execute("UPDATE tenants SET epoch = ? WHERE tenant = ?", (epoch, name))
            return epoch

    # -------------------------------------------------------------- reads

    def get(self, tenant, collection, item_id):
        self._ensure_tenant(tenant)
        with self.backend.statements() as tx:
            row = tx.execute(
                f"SELECT {_COLUMNS} FROM items WHERE tenant = ? AND collection = ? AND id = ?",
                (tenant, collection, item_id),
            ).fetchone()
        return self._record(row) if row else None

    def head(self, tenant):
        """The tenant's feed head (an int) and epoch, read together."""
        self._ensure_tenant(tenant)
        with self.backend.statements() as tx:
            return self._tenant_row(tx, tenant)

    def epoch(self, tenant):
        return self.head(tenant)[1]

    def history(self, tenant):
        """Every applied operation's result, in the order applied (by ``seq``)."""
        with self.backend.statements() as tx:
            rows = tx.execute("SELECT record FROM decided_ops WHERE tenant = ? ORDER BY seq", (tenant,)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def applied_count(self, tenant):
        with self.backend.statements() as tx:
            return tx.execute("SELECT COUNT(*) FROM decided_ops WHERE tenant = ?", (tenant,)).fetchone()[0]

    @staticmethod
    def _filter(collections):
        if not collections:
            return "", []
        return f" AND collection IN ({','.join('?' for _ in collections)})", list(collections)

    def live_items(self, tenant, collections):
        where, params = self._filter(collections)
        self._ensure_tenant(tenant)
        # One read transaction (one snapshot): the items and the cursor describe the same moment.
        with self.backend.read() as tx:
            rows = tx.execute(
                f"SELECT {_COLUMNS} FROM items WHERE tenant = ? AND deleted = 0{where} ORDER BY seq", [tenant, *params]
            ).fetchall()
            head, epoch = self._tenant_row(tx, tenant)
        return [self._record(r) for r in rows], head, epoch

    def recent_items(self, tenant, collections, limit):
        """The ``limit`` most recently written live items, newest first, with the number of live
        items, the head and the epoch: ``(items, total, head, epoch)``, read in one snapshot. A new
        device shows these first and reads the rest from the feed (docs/protocol.md)."""
        where, params = self._filter(collections)
        self._ensure_tenant(tenant)
        with self.backend.read() as tx:
            rows = tx.execute(
                f"SELECT {_COLUMNS} FROM items WHERE tenant = ? AND deleted = 0{where} ORDER BY seq DESC LIMIT ?",
                [tenant, *params, limit],
            ).fetchall()
            total = tx.execute(f"SELECT COUNT(*) FROM items WHERE tenant = ? AND deleted = 0{where}", [tenant, *params]).fetchone()[0]
            head, epoch = self._tenant_row(tx, tenant)
        return [self._record(r) for r in rows], total, head, epoch

    def changes(self, tenant, since, limit, collections):
        """Returns ``(page, has_more, head, epoch)``, read in one snapshot. ``head`` is the
        tenant's whole feed's last seq (whatever the filter), so a caller can tell a cursor beyond it."""
        where, params = self._filter(collections)
        self._ensure_tenant(tenant)
        with self.backend.read() as tx:
            rows = tx.execute(
                f"SELECT {_COLUMNS} FROM items WHERE tenant = ? AND seq > ?{where} ORDER BY seq LIMIT ?",
                [tenant, since, *params, limit + 1],
            ).fetchall()
            head, epoch = self._tenant_row(tx, tenant)
        return [self._record(r) for r in rows[:limit]], len(rows) > limit, head, epoch

    # -------------------------------------------------------------- tokens

    def issue_token(self, tenant, ttl_ms=None):
        """A new random bearer token for ``tenant``, stored in the database (so every worker and
        the socket process accept it), expiring ``ttl_ms`` from now (never when None)."""
        token = secrets.token_urlsafe(24)
        expires_at = now_ms() + ttl_ms if ttl_ms is not None else None
        with self.backend.statements() as tx:
            tx.execute("INSERT INTO tokens (token, tenant, expires_at) VALUES (?, ?, ?)", (token, tenant, expires_at))
        return token, expires_at

    def token_tenant(self, token):
        """``(tenant, expires_at)`` of a stored token, or None."""
        with self.backend.statements() as tx:
            row = tx.execute("SELECT tenant, expires_at FROM tokens WHERE token = ?", (token,)).fetchone()
        return (row[0], row[1]) if row else None

    # -------------------------------------------------------------- testing state (shared by workers)

    def set_faults(self, tenant, remaining, status):
        with self.backend.statements() as tx:
            tx.execute(
                "INSERT INTO test_faults (tenant, remaining, status) VALUES (?, ?, ?)"
                " ON CONFLICT (tenant) DO UPDATE SET remaining = excluded.remaining, status = excluded.status",
                (tenant, remaining, status),
            )

    def take_fault(self, tenant):
        """Consumes one injected failure of the tenant: its status, or None when none is pending."""
        with self.backend.statements() as tx:
            row = tx.execute(
                "UPDATE test_faults SET remaining = remaining - 1 WHERE tenant = ? AND remaining > 0 RETURNING status",
                (tenant,),
            ).fetchone()
        return row[0] if row else None

    def count_request(self, tenant, endpoint):
        with self.backend.statements() as tx:
            tx.execute(
                "INSERT INTO test_stats (tenant, endpoint, count) VALUES (?, ?, 1)"
                " ON CONFLICT (tenant, endpoint) DO UPDATE SET count = test_stats.count + 1",
                (tenant, endpoint),
            )

    def request_counts(self, tenant):
        with self.backend.statements() as tx:
            rows = tx.execute("SELECT endpoint, count FROM test_stats WHERE tenant = ?", (tenant,)).fetchall()
        return {name: count for name, count in rows}
