"""SQLite storage for the sync protocol (docs/protocol.md).

Rules this module keeps:
- An operation's effect and its decided result (keyed by opId) are written in the same
  transaction, so a replayed opId is answered from the stored result and never applied twice.
- ``seq`` increases by one for every applied write across all collections, so the change feed
  is totally ordered and a cursor (the last seq seen) is exact.
- Deletes leave tombstones, so incremental pulls can report them.
- The ``epoch`` (in ``meta``) names this database's history. It is made with the database and
  replaced whenever that history stops being the one clients have seen: a reset, or an operator
  restoring a backup (``rotate_epoch``). Every answer reads it in the same transaction as its data.
"""

import json
import sqlite3
import threading
import time
import uuid

from .merge import merge_patch_onto, pointer

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    collection  TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    client_time INTEGER NOT NULL,
    deleted     INTEGER NOT NULL,
    value       TEXT,
    seq         INTEGER NOT NULL,
    op_id       TEXT    NOT NULL,
    PRIMARY KEY (collection, id)
);
CREATE UNIQUE INDEX IF NOT EXISTS items_seq ON items (seq);
CREATE TABLE IF NOT EXISTS decided_ops (
    op_id   TEXT PRIMARY KEY,
    record  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key     TEXT PRIMARY KEY,
    value   TEXT NOT NULL
);
"""


def new_epoch():
    return uuid.uuid4().hex


def _read_epoch(db):
    return db.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()[0]


def _set_epoch(db):
    epoch = new_epoch()
    db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('epoch', ?)", (epoch,))
    return epoch


def _head(db):
    return db.execute("SELECT COALESCE(MAX(seq), 0) FROM items").fetchone()[0]


def now_ms():
    return int(time.time() * 1000)


def _record(row):
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
        "opId": op_id,
    }


_COLUMNS = "collection, id, version, updated_at, client_time, deleted, value, seq, op_id"


class Storage:
    """One SQLite database. A connection per call; writes are serialised by a lock."""

    def __init__(self, path):
        self.path = path
        self._write_lock = threading.Lock()
        db = self._connect()
        try:
            db.executescript(SCHEMA)
            # A database opened for the first time, also one written before epochs existed, gets one.
            db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('epoch', ?)", (new_epoch(),))
        finally:
            db.close()

    def _connect(self):
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    # -------------------------------------------------------------- writes

    def apply_ops(self, ops):
        """Applies operations in order, each in its own savepoint of one transaction.

        ``ops`` holds validated operations, or ``("rejected", opId, error)`` tuples, which are
        passed through. Returns ``(results, cursor, epoch)``: one result per operation
        (``("applied" | "duplicate", record)`` or ``("conflict", current_or_None)``), and the feed's
        head and the epoch as of the commit.
        """
        with self._write_lock:
            db = self._connect()
            try:
                db.execute("BEGIN IMMEDIATE")
                results = [self._apply_one(db, op) for op in ops]
                cursor, epoch = _head(db), _read_epoch(db)
                db.execute("COMMIT")
                return results, cursor, epoch
            except BaseException:
                db.execute("ROLLBACK")
                raise
            finally:
                db.close()

    def _apply_one(self, db, op):
        if op[0] == "rejected":
            return op
        op = op[1]
        done = db.execute("SELECT record FROM decided_ops WHERE op_id = ?", (op["opId"],)).fetchone()
        if done:
            return ("duplicate", json.loads(done[0]))
        db.execute("SAVEPOINT op")
        try:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM items WHERE collection = ? AND id = ?", (op["collection"], op["id"])
            ).fetchone()
            current = _record(row) if row else None
            current_version = current["version"] if current else 0
            base = op["baseVersion"] or 0
            value = op["value"]
            if op["type"] == "patch":
                # A patch merges onto what the server has, at field level, whatever the base
                # version (docs/protocol.md, "Patches"); there must be an item to patch.
                if current is None or current["deleted"]:
                    db.execute("RELEASE op")
                    return ("conflict", current, [])
                value, clashes = merge_patch_onto(current["value"], op["patch"], op["base"], force=op["force"])
                if clashes:
                    db.execute("RELEASE op")
                    return ("conflict", current, [pointer(path) for path in clashes])
            elif not op["force"] and base != current_version:
                # Conflicts are not stored as decided: the client may retry after rebasing.
                db.execute("RELEASE op")
                return ("conflict", current)
            seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM items").fetchone()[0]
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
            db.execute(
                f"INSERT OR REPLACE INTO items ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record["collection"],
                    record["id"],
                    record["version"],
                    record["updatedAt"],
                    record["clientTime"],
                    1 if deleted else 0,
                    None if deleted else json.dumps(value, separators=(",", ":"), allow_nan=False),
                    seq,
                    op["opId"],
                ),
            )
            db.execute(
                "INSERT INTO decided_ops (op_id, record) VALUES (?, ?)",
                (op["opId"], json.dumps(record, separators=(",", ":"), allow_nan=False)),
            )
            db.execute("RELEASE op")
            return ("applied", record)
        except BaseException:
            db.execute("ROLLBACK TO op")
            db.execute("RELEASE op")
            raise

    def reset(self):
        """Wipes everything. A wiped database is a new one: returns its new epoch."""
        with self._write_lock:
            db = self._connect()
            try:
                db.execute("BEGIN IMMEDIATE")
                db.execute("DELETE FROM items")
                db.execute("DELETE FROM decided_ops")
                epoch = _set_epoch(db)
                db.execute("COMMIT")
                return epoch
            finally:
                db.close()

    def rotate_epoch(self):
        """Gives the database a new epoch, keeping its data; returns it. Run it after restoring a
        backup, so clients see that the history they followed is gone and pull in full."""
        with self._write_lock:
            db = self._connect()
            try:
                db.execute("BEGIN IMMEDIATE")
                epoch = _set_epoch(db)
                db.execute("COMMIT")
                return epoch
            finally:
                db.close()

    # -------------------------------------------------------------- reads

    def get(self, collection, item_id):
        db = self._connect()
        try:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM items WHERE collection = ? AND id = ?", (collection, item_id)
            ).fetchone()
            return _record(row) if row else None
        finally:
            db.close()

    def cursor(self):
        db = self._connect()
        try:
            return _head(db)
        finally:
            db.close()

    def epoch(self):
        db = self._connect()
        try:
            return _read_epoch(db)
        finally:
            db.close()

    def history(self):
        """Every applied operation's result, in the order applied (by ``seq``)."""
        db = self._connect()
        try:
            rows = db.execute("SELECT record FROM decided_ops").fetchall()
        finally:
            db.close()
        return sorted((json.loads(r[0]) for r in rows), key=lambda r: r["seq"])

    def applied_count(self):
        db = self._connect()
        try:
            return db.execute("SELECT COUNT(*) FROM decided_ops").fetchone()[0]
        finally:
            db.close()

    def _filter(self, collections):
        if not collections:
            return "", []
        return f" AND collection IN ({','.join('?' for _ in collections)})", list(collections)

    def live_items(self, collections):
        where, params = self._filter(collections)
        db = self._connect()
        try:
            # One read transaction: the items and the cursor describe the same moment.
            db.execute("BEGIN")
            rows = db.execute(f"SELECT {_COLUMNS} FROM items WHERE deleted = 0{where} ORDER BY seq", params).fetchall()
            cursor, epoch = _head(db), _read_epoch(db)
            db.execute("COMMIT")
            return [_record(r) for r in rows], cursor, epoch
        finally:
            db.close()

    def changes(self, since, limit, collections):
        """Returns ``(page, has_more, head, epoch)``, read in one transaction. ``head`` is the whole
        feed's last seq (whatever the filter), so a caller can tell a cursor beyond it."""
        where, params = self._filter(collections)
        db = self._connect()
        try:
            db.execute("BEGIN")
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM items WHERE seq > ?{where} ORDER BY seq LIMIT ?",
                [since, *params, limit + 1],
            ).fetchall()
            head, epoch = _head(db), _read_epoch(db)
            db.execute("COMMIT")
            return [_record(r) for r in rows[:limit]], len(rows) > limit, head, epoch
        finally:
            db.close()
