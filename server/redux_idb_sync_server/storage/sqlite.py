"""The SQLite backend (stdlib ``sqlite3``): the embedded default. A connection per transaction;
writers are serialised by SQLite's own lock (``BEGIN IMMEDIATE``, waiting up to 30 s), which
holds across threads and processes alike."""

import json
import os
import sqlite3
import threading
from contextlib import contextmanager

from .schema import SCHEMA


class _Tx:
    #: What makes a SELECT lock the rows it reads until the transaction ends.
    for_update = ""
    def __init__(self, db):
        self._db = db

    def execute(self, sql, params=()):
        return self._db.execute(sql, params)

    def notify(self, tenant, cursor):
        """SQLite has no cross-process notification: the extension publishes in-process after commit."""


class SqliteBackend:
    kind = "sqlite"

    def __init__(self, path):
        self.path = path
        self._keeper = None
        self._keeper_pid = None
        self._keeper_lock = threading.Lock()

    def _connect(self):
        self._keep_open()
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    def _keep_open(self):
        """Holds one connection open for the life of the process (a new one after a fork).

        When the last connection to a WAL database closes, SQLite checkpoints the WAL into the
        database file, syncs it and deletes the WAL: with a connection per transaction that is
        every transaction, two fsyncs per write (27 ms a push on a busy machine instead of 1).
        A connection that stays open (and has read once, so it holds the WAL open) keeps the
        others from being the last; checkpoints then happen as SQLite schedules them (every
        1000 pages).
        """
        if self._keeper_pid == os.getpid():
            return
        with self._keeper_lock:
            if self._keeper_pid == os.getpid():
                return
            # An inherited keeper belongs to the parent process: left alone, never used or closed here.
            keeper = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            keeper.execute("PRAGMA journal_mode=WAL").fetchall()
            keeper.execute("SELECT count(*) FROM sqlite_master").fetchall()
            self._keeper = keeper
            self._keeper_pid = os.getpid()

    def close(self):
        with self._keeper_lock:
            if self._keeper is not None and self._keeper_pid == os.getpid():
                self._keeper.close()
            self._keeper = None
            self._keeper_pid = None

    @staticmethod
    def encode_key(text):
        return text

    @staticmethod
    def decode_key(text):
        return text

    @contextmanager
    def _transaction(self, begin):
        db = self._connect()
        try:
            db.execute(begin)
            try:
                yield _Tx(db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            db.close()

    @contextmanager
    def statements(self):
        """Statements that each commit on their own (autocommit)."""
        db = self._connect()
        try:
            yield _Tx(db)
        finally:
            db.close()

    def write(self):
        return self._transaction("BEGIN IMMEDIATE")

    def read(self):
        # In WAL mode a deferred transaction reads one snapshot from its first SELECT on.
        return self._transaction("BEGIN")

    def create_schema(self):
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            columns = [r[1] for r in db.execute("PRAGMA table_info(items)").fetchall()]
            if columns and "tenant" not in columns:
                _migrate_single_tenant(db)
            for statement in SCHEMA:
                db.execute(statement)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        finally:
            db.close()


def _migrate_single_tenant(db):
    """A database written before tenants existed: its data becomes the ``default`` tenant's, and
    its epoch (if it had one; else a new one) that tenant's epoch."""
    import uuid

    db.execute("ALTER TABLE items RENAME TO items_v1")
    db.execute("ALTER TABLE decided_ops RENAME TO decided_ops_v1")
    db.execute("DROP INDEX IF EXISTS items_seq")
    for statement in SCHEMA:
        db.execute(statement)
    db.execute(
        "INSERT INTO items (tenant, collection, id, version, updated_at, client_time, deleted, value, seq, op_id)"
        " SELECT 'default', collection, id, version, updated_at, client_time, deleted, value, seq, op_id FROM items_v1"
    )
    for op_id, record in db.execute("SELECT op_id, record FROM decided_ops_v1").fetchall():
        try:
            seq = json.loads(record).get("seq", 0)
        except ValueError:
            seq = 0
        db.execute("INSERT INTO decided_ops (tenant, op_id, seq, record) VALUES ('default', ?, ?, ?)", (op_id, seq, record))
    epoch = None
    if db.execute("SELECT name FROM sqlite_master WHERE name = 'meta'").fetchone():
        row = db.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()
        epoch = row[0] if row else None
    head = db.execute("SELECT COALESCE(MAX(seq), 0) FROM items").fetchone()[0]
    db.execute("INSERT INTO tenants (tenant, head, epoch) VALUES ('default', ?, ?)", (head, epoch or uuid.uuid4().hex))
    db.execute("DROP TABLE items_v1")
    db.execute("DROP TABLE decided_ops_v1")
