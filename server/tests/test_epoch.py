"""Protocol 2: the server epoch, and 410 cursor_ahead for a cursor beyond the feed."""

import os
import re
import sqlite3
import subprocess
import sys

from redux_idb_sync_server import Storage, create_app

EPOCH = re.compile(r"[0-9a-f]{32}")


def push(client, ops):
    return client.post("/api/sync/push", json={"clientId": "t", "ops": ops})


def test_health_reports_protocol_4_and_the_epoch(client):
    body = client.get("/api/health").get_json()
    assert body["protocol"] == 4
    assert EPOCH.fullmatch(body["epoch"])


def test_every_sync_answer_carries_the_same_epoch(client, op):
    epoch = client.get("/api/health").get_json()["epoch"]
    assert push(client, [op()]).get_json()["epoch"] == epoch
    assert client.get("/api/sync/pull").get_json()["epoch"] == epoch
    assert client.get("/api/sync/changes").get_json()["epoch"] == epoch


def test_the_epoch_survives_a_restart(tmp_path):
    path = str(tmp_path / "keep.sqlite3")
    first = create_app(path).test_client().get("/api/health").get_json()["epoch"]
    assert create_app(path).test_client().get("/api/health").get_json()["epoch"] == first


def test_reset_wipes_and_makes_a_new_epoch(client, op):
    before = client.get("/api/health").get_json()["epoch"]
    push(client, [op()])
    assert client.post("/api/_test/reset", json={}).get_json()["ok"] is True
    after = client.get("/api/health").get_json()["epoch"]
    assert EPOCH.fullmatch(after) and after != before
    assert client.get("/api/sync/pull").get_json() == {"items": [], "cursor": "0", "epoch": after}


def test_rotate_epoch_keeps_the_data(tmp_path, op):
    path = str(tmp_path / "rot.sqlite3")
    client = create_app(path).test_client()
    push(client, [op()])
    before = client.get("/api/health").get_json()["epoch"]
    new = Storage(path).rotate_epoch()
    assert EPOCH.fullmatch(new) and new != before
    assert client.get("/api/health").get_json()["epoch"] == new
    assert len(client.get("/api/sync/pull").get_json()["items"]) == 1


def test_cli_rotates_the_epoch_and_exits(tmp_path, op):
    path = str(tmp_path / "cli.sqlite3")
    client = create_app(path).test_client()
    push(client, [op()])
    before = client.get("/api/health").get_json()["epoch"]
    app_py = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "app.py")
    done = subprocess.run([sys.executable, app_py, "--rotate-epoch", "--db", path], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    after = client.get("/api/health").get_json()["epoch"]
    assert after != before and after in done.stdout
    assert len(client.get("/api/sync/pull").get_json()["items"]) == 1


def test_a_database_without_an_epoch_gets_one(tmp_path):
    path = str(tmp_path / "v1.sqlite3")
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE items (collection TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
        " client_time INTEGER NOT NULL, deleted INTEGER NOT NULL, value TEXT, seq INTEGER NOT NULL, op_id TEXT NOT NULL,"
        " PRIMARY KEY (collection, id)); CREATE TABLE decided_ops (op_id TEXT PRIMARY KEY, record TEXT NOT NULL);"
    )
    db.close()
    assert EPOCH.fullmatch(create_app(path).test_client().get("/api/health").get_json()["epoch"])


def test_a_cursor_beyond_the_feed_is_410_cursor_ahead(client, op):
    push(client, [op(id="a"), op(id="b")])
    epoch = client.get("/api/health").get_json()["epoch"]
    assert client.get("/api/sync/changes?since=2").status_code == 200
    r = client.get("/api/sync/changes?since=3")
    assert r.status_code == 410
    body = r.get_json()
    assert body["error"] == "cursor_ahead" and body["epoch"] == epoch and isinstance(body["message"], str)
    # The head is the whole feed's, whatever the collections filter.
    assert client.get("/api/sync/changes?since=2&collections=notes").status_code == 200
    assert client.get(f"/api/sync/changes?since={2**63 - 1}").status_code == 410


def test_an_empty_feed_accepts_only_cursor_zero(client):
    assert client.get("/api/sync/changes?since=0").status_code == 200
    assert client.get("/api/sync/changes?since=1").status_code == 410


def test_cli_refuses_to_rotate_a_database_that_does_not_exist(tmp_path):
    app_py = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "app.py")
    missing = str(tmp_path / "typo.sqlite3")
    done = subprocess.run([sys.executable, app_py, "--rotate-epoch", "--db", missing], capture_output=True, text=True, timeout=30)
    assert done.returncode != 0 and not os.path.exists(missing)
