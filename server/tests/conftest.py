import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from redux_idb_sync_server import create_app  # noqa: E402


@pytest.fixture
def make_client(tmp_path):
    def make(**options):
        app = create_app(str(tmp_path / "sync.sqlite3"), testing_endpoints=True, **options)
        app.config["TESTING"] = True
        return app.test_client()

    return make


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
