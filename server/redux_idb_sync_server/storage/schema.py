"""The tables, in SQL that SQLite and PostgreSQL both accept (BIGINT is INTEGER to SQLite)."""

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS tenants (
        tenant  TEXT   PRIMARY KEY,
        head    BIGINT NOT NULL,
        epoch   TEXT   NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS items (
        tenant      TEXT   NOT NULL,
        collection  TEXT   NOT NULL,
        id          TEXT   NOT NULL,
        version     BIGINT NOT NULL,
        updated_at  BIGINT NOT NULL,
        client_time BIGINT NOT NULL,
        deleted     INTEGER NOT NULL,
        value       TEXT,
        seq         BIGINT NOT NULL,
        op_id       TEXT   NOT NULL,
        PRIMARY KEY (tenant, collection, id)
    )""",
    "CREATE UNIQUE INDEX IF NOT EXISTS items_feed ON items (tenant, seq)",
    """CREATE TABLE IF NOT EXISTS decided_ops (
        tenant  TEXT   NOT NULL,
        op_id   TEXT   NOT NULL,
        seq     BIGINT NOT NULL,
        record  TEXT   NOT NULL,
        PRIMARY KEY (tenant, op_id)
    )""",
    "CREATE INDEX IF NOT EXISTS decided_ops_seq ON decided_ops (tenant, seq)",
    """CREATE TABLE IF NOT EXISTS tokens (
        token       TEXT   PRIMARY KEY,
        tenant      TEXT   NOT NULL,
        expires_at  BIGINT
    )""",
    """CREATE TABLE IF NOT EXISTS test_faults (
        tenant     TEXT    PRIMARY KEY,
        remaining  INTEGER NOT NULL,
        status     INTEGER NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS test_stats (
        tenant    TEXT   NOT NULL,
        endpoint  TEXT   NOT NULL,
        count     BIGINT NOT NULL,
        PRIMARY KEY (tenant, endpoint)
    )""",
]
