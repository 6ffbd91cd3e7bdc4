"""Fixtures. ``make_client`` builds the app on SQLite in a temporary directory, or, when
``REDUX_IDB_SYNC_TEST_DATABASE`` is a ``postgresql://`` URL, on that (emptied first) PostgreSQL
database: `.ci/run` runs this suite once per backend."""

import os

import pytest

from redux_idb_sync_server import create_app

PG_URL = os.environ.get("REDUX_IDB_SYNC_TEST_DATABASE", "")
ON_POSTGRES = PG_URL.startswith(("postgresql://", "postgres://"))


def empty_postgres(url):
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


@pytest.fixture
def database(tmp_path):
    """The database a test's app uses: a fresh SQLite file, or the emptied PostgreSQL database."""
    if ON_POSTGRES:
        empty_postgres(PG_URL)
        return PG_URL
    return str(tmp_path / "sync.sqlite3")


@pytest.fixture
def make_client(database):
    apps = []

    def make(**options):
        app = create_app(database, testing_endpoints=options.pop("testing_endpoints", True), **options)
        app.config["TESTING"] = True
        apps.append(app)
        return app.test_client()

    yield make
    for app in apps:
        app.extensions["redux_idb_sync"].storage.close()


@pytest.fixture
def client(make_client):
    return make_client()


_counter = [0]


@pytest.fixture
def op():
    def build(**over):
        _counter[0] += 1
        base = {
            "opId": f"op-{_counter[0]}",
            "collection": "files",
            "id": "a",
            "type": "put",
            "value": {"id": "a", "title": "t"},
            "baseVersion": None,
            "clientTime": 1000,
        }
        base.update(over)
        return {k: v for k, v in base.items() if v is not ...}

    return build
