"""The PostgreSQL backend: psycopg 3 with a connection pool (``psycopg_pool`` when installed,
else a small built-in one). Writes run in READ COMMITTED (the tenant row lock taken first makes
every later statement see the previous writer's commit); reads run in REPEATABLE READ, so a page
of the feed and its head come from one snapshot.

Pools are per process and made lazily, so an app created before gunicorn forks its workers
(``--preload``) gives each worker its own connections.
"""

import json
import os
import queue
import threading
from contextlib import contextmanager

from .schema import SCHEMA

CHANNEL = "redux_idb_sync_feed"


def _psycopg():
    try:
        import psycopg
    except ImportError as error:  # pragma: no cover - depends on the machine
        raise RuntimeError(
            "a postgresql:// database needs psycopg 3: pip install './server[postgres]'"
        ) from error
    return psycopg


class _SimplePool:
    """A fixed-size, thread-safe pool of autocommit connections (used without psycopg_pool)."""

    def __init__(self, url, size):
        self._url = url
        self._idle = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)

    def _open(self):
        psycopg = _psycopg()
        return psycopg.connect(self._url, autocommit=True, prepare_threshold=None)

    @contextmanager
    def connection(self):
        self._slots.acquire()
        conn = None
        try:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._open()
            if conn.closed:
                conn = self._open()
            yield conn
        except BaseException:
            if conn is not None and not conn.closed and conn.info.transaction_status != 0:
                conn.close()  # not idle: a broken or unfinished transaction; never reuse it
            raise
        finally:
            if conn is not None and not conn.closed:
                self._idle.put(conn)
            self._slots.release()

    def close(self):
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


def _make_pool(url, size):
    try:
        from psycopg_pool import ConnectionPool
    except ImportError:
        return _SimplePool(url, size)
    return ConnectionPool(
        url, min_size=1, max_size=size, kwargs={"autocommit": True, "prepare_threshold": None}, open=True
    )


class _Tx:
    #: What makes a SELECT lock the rows it reads until the transaction ends.
    for_update = " FOR UPDATE"
    def __init__(self, conn):
        self._conn = conn

    def execute(self, sql, params=()):
        return self._conn.execute(sql.replace("?", "%s"), params)

    def notify(self, tenant, cursor):
        """Delivered by PostgreSQL to every ``LISTEN redux_idb_sync_feed`` connection if and only
        if this transaction commits."""
        payload = json.dumps({"tenant": tenant, "cursor": cursor}, separators=(",", ":"))
        self._conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))


class PostgresBackend:
    kind = "postgresql"

    def __init__(self, url, pool_size=None):
        self.url = url
        self.pool_size = pool_size or int(os.environ.get("REDUX_IDB_SYNC_PG_POOL_SIZE", "8"))
        self._pool = None
        self._pid = None
        self._lock = threading.Lock()

    def _get_pool(self):
        pid = os.getpid()
        if self._pool is None or self._pid != pid:
            with self._lock:
                if self._pool is None or self._pid != pid:
                    self._pool = _make_pool(self.url, self.pool_size)
                    self._pid = pid
        return self._pool

    def close(self):
        if self._pool is not None and self._pid == os.getpid():
            self._pool.close()
        self._pool = None

    @staticmethod
    def encode_key(text):
        """PostgreSQL text cannot hold U+0000, which an opId may contain: escape it (and the
        escape character) reversibly."""
        return text.replace("\\", "\\\\").replace("\x00", "\\0")

    @staticmethod
    def decode_key(text):
        out = []
        i = 0
        while i < len(text):
            c = text[i]
            if c == "\\" and i + 1 < len(text):
                out.append("\x00" if text[i + 1] == "0" else text[i + 1])
                i += 2
            else:
                out.append(c)
                i += 1
        return "".join(out)

    @contextmanager
    def _transaction(self, begin):
        with self._get_pool().connection() as conn:
            conn.execute(begin)
            try:
                yield _Tx(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def statements(self):
        """Statements that each commit on their own (autocommit): one round trip each."""
        with self._get_pool().connection() as conn:
            yield _Tx(conn)

    def write(self):
        return self._transaction("BEGIN ISOLATION LEVEL READ COMMITTED")

    def read(self):
        return self._transaction("BEGIN ISOLATION LEVEL REPEATABLE READ")

    def create_schema(self):
        psycopg = _psycopg()
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("BEGIN")
            # Several workers starting at once: one creates the tables, the others wait.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('redux_idb_sync_schema'))")
            for statement in SCHEMA:
                conn.execute(statement)
            conn.execute("COMMIT")

    def connect_listener(self):
        """A dedicated autocommit connection that LISTENs on the feed channel (for the socket process)."""
        psycopg = _psycopg()
        conn = psycopg.connect(self.url, autocommit=True)
        conn.execute(f"LISTEN {CHANNEL}")
        return conn
