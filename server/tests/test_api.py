import json
import os

import pytest

from conftest import ON_POSTGRES

from redux_idb_sync_server import create_blueprint
from flask import Flask


def push(client, ops, **headers):
    return client.post("/api/sync/push", json={"clientId": "t", "ops": ops}, headers=headers)


def test_health_is_public_and_versioned(make_client):
    client = make_client(token="secret")
    r = client.get("/api/health")
    assert r.status_code == 200
    body = r.get_json()
    assert body["status"] == "ok" and body["protocol"] == 4 and isinstance(body["serverTime"], int)


def test_push_applies_in_order_with_server_versions(client, op):
    a, b = op(), op(id="b", value={"id": "b"})
    r = push(client, [a, b])
    assert r.status_code == 200
    results = r.get_json()["results"]
    assert [x["status"] for x in results] == ["applied", "applied"]
    assert [x["opId"] for x in results] == [a["opId"], b["opId"]]
    assert results[0]["record"]["version"] == 1
    assert results[1]["record"]["seq"] == results[0]["record"]["seq"] + 1
    assert results[0]["record"]["opId"] == a["opId"]


def test_replay_is_applied_once(client, op):
    once = op()
    first = push(client, [once]).get_json()["results"][0]
    second = push(client, [once]).get_json()["results"][0]
    assert second["status"] == "duplicate"
    assert second["record"] == first["record"]
    assert client.get("/api/_test/stats").get_json()["appliedOps"] == 1


def test_conflict_returns_current_and_is_not_stored(client, op):
    push(client, [op()])
    stale = op(value={"id": "a", "title": "stale"})
    result = push(client, [stale]).get_json()["results"][0]
    assert result["status"] == "conflict" and result["current"]["version"] == 1
    # Not decided: the same opId, rebased, is applied.
    rebased = dict(stale, baseVersion=1)
    assert push(client, [rebased]).get_json()["results"][0]["status"] == "applied"


def test_force_overrides_a_stale_base(client, op):
    push(client, [op()])
    assert push(client, [op(baseVersion=0, force=True)]).get_json()["results"][0]["record"]["version"] == 2


def test_invalid_op_is_rejected_alone(client, op):
    results = push(client, [op(id="x"), op(type="explode"), op(id="y", value={"v": 1})]).get_json()["results"]
    assert [r["status"] for r in results] == ["applied", "rejected", "applied"]
    assert results[1]["error"]["error"] == "bad_request"


def test_validation_rules(client, op):
    cases = [
        op(opId=""),
        op(collection="bad name"),
        op(id=""),
        op(id="x" * 513),
        op(id="tab\there"),
        op(baseVersion=True),
        op(baseVersion=-1),
        op(value=None),
        op(type="delete", value={"a": 1}),
        op(force="yes"),
        op(clientTime="now"),
    ]
    deep = {}
    node = deep
    for _ in range(150):
        node["x"] = {}
        node = node["x"]
    cases.append(op(value=deep))
    results = push(client, cases).get_json()["results"]
    assert all(r["status"] == "rejected" for r in results), results


def test_envelope_errors_are_json_400(client):
    for body in ({"ops": []}, {"clientId": "t", "ops": "x"}, {"clientId": "t", "ops": []}, [1]):
        r = client.post("/api/sync/push", json=body)
        assert r.status_code == 400 and r.get_json()["error"] == "bad_request"
    r = client.post("/api/sync/push", data="{nope", content_type="application/json")
    assert r.status_code == 400


def test_non_json_body_is_415(client):
    r = client.post("/api/sync/push", data="clientId=t", content_type="application/x-www-form-urlencoded")
    assert r.status_code == 415 and r.get_json()["error"] == "unsupported_media_type"


def test_too_many_ops_is_413(client, op):
    r = push(client, [op(id=f"i{i}") for i in range(501)])
    assert r.status_code == 413 and r.get_json()["error"] == "payload_too_large"


def test_body_limit_is_413_json(make_client, op):
    client = make_client(max_body_bytes=1024)
    r = push(client, [op(value={"blob": "x" * 4096})])
    assert r.status_code == 413 and r.get_json()["error"] == "payload_too_large"


def test_single_item_endpoints_with_encoded_ids(client):
    for item_id in ["a/b", "../up", "q?x=1", "ünï ✓"]:
        from urllib.parse import quote

        path = f"/api/items/files/{quote(item_id, safe='')}"
        r = client.put(path, json={"opId": f"p-{item_id}", "value": {"id": item_id}, "baseVersion": None, "clientTime": 1})
        assert r.status_code == 200, r.get_json()
        assert r.get_json()["record"]["id"] == item_id
        assert client.get(path).get_json()["version"] == 1
        r = client.put(path, json={"opId": f"p2-{item_id}", "value": {"id": item_id}, "baseVersion": None, "clientTime": 2})
        assert r.status_code == 409 and r.get_json()["current"]["version"] == 1
        r = client.delete(path, json={"opId": f"d-{item_id}", "baseVersion": 1, "clientTime": 3})
        assert r.status_code == 200 and r.get_json()["record"]["deleted"] is True


def test_replayed_single_put_says_duplicate(client):
    body = {"opId": "same", "value": {"id": "a"}, "baseVersion": None, "clientTime": 1}
    client.put("/api/items/files/a", json=body)
    r = client.put("/api/items/files/a", json=body)
    assert r.status_code == 200 and r.get_json()["duplicate"] is True


def test_unknown_item_and_route_are_json_404(client):
    assert client.get("/api/items/files/nope").get_json()["error"] == "not_found"
    r = client.get("/api/definitely/not/here")
    assert r.status_code == 404 and r.get_json()["error"] == "not_found"
    assert client.get("/elsewhere").get_json()["error"] == "not_found"


def test_tombstones_cursor_and_paging(client, op):
    push(client, [op(id="a"), op(id="b", value={"id": "b"}), op(id="c", value={"id": "c"})])
    push(client, [op(id="b", type="delete", value=None, baseVersion=1)])
    pulled = client.get("/api/sync/pull").get_json()
    assert sorted(i["id"] for i in pulled["items"]) == ["a", "c"]
    assert pulled["cursor"] == "4"
    page = client.get("/api/sync/changes?since=0&limit=2").get_json()
    assert [c["id"] for c in page["changes"]] == ["a", "c"] and page["hasMore"] is True
    rest = client.get(f"/api/sync/changes?since={page['cursor']}&limit=2").get_json()
    assert [(c["id"], c["deleted"], c["value"]) for c in rest["changes"]] == [("b", True, None)]
    assert rest["hasMore"] is False
    empty = client.get(f"/api/sync/changes?since={rest['cursor']}").get_json()
    assert empty["changes"] == [] and empty["cursor"] == rest["cursor"]


def test_post_changes_answers_like_get_at_one_url(client, op):
    # Protocol 4: the parameters in a JSON body, so a browser preflights the URL once, not per cursor.
    push(client, [op(id="a"), op(id="b", value={"id": "b"}), op(collection="notes", id="n", value={"id": "n"})])
    for query, body in [
        ("since=0&limit=2", {"since": "0", "limit": 2}),
        ("since=2", {"since": "2"}),
        ("since=0&collections=notes", {"collections": ["notes"]}),
        ("", {}),
    ]:
        got = client.get(f"/api/sync/changes?{query}").get_json()
        posted = client.post("/api/sync/changes", json=body)
        assert posted.status_code == 200 and posted.get_json() == got
    assert client.post("/api/sync/changes", json={"since": "9"}).status_code == 410
    for bad in [[], {"since": 2}, {"since": "banana"}, {"limit": 0}, {"limit": "5"}, {"limit": True}, {"collections": "notes"}, {"collections": ["a b"]}]:
        answer = client.post("/api/sync/changes", json=bad)
        assert answer.status_code == 400 and answer.get_json()["error"] == "bad_request", bad


def test_bad_cursor_and_limit_are_400(client):
    assert client.get("/api/sync/changes?since=banana").status_code == 400
    assert client.get("/api/sync/changes?limit=0").status_code == 400
    assert client.get("/api/sync/changes?limit=1001").status_code == 400


def test_collections_filter(client, op):
    push(client, [op(id="a"), op(collection="notes", id="n", value={"id": "n"})])
    assert [i["collection"] for i in client.get("/api/sync/pull?collections=notes").get_json()["items"]] == ["notes"]
    assert [c["collection"] for c in client.get("/api/sync/changes?collections=files").get_json()["changes"]] == ["files"]


def test_bearer_token_auth(make_client, op):
    client = make_client(token="secret")
    r = push(client, [op()])
    assert r.status_code == 401 and r.get_json()["error"] == "unauthorized"
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert push(client, [op()], Authorization="Bearer wrong").status_code == 401
    assert push(client, [op()], Authorization="Bearer secret").status_code == 200


def test_proto_keys_are_plain_data(client):
    raw = '{"clientId":"t","ops":[{"opId":"p","collection":"files","id":"p","type":"put","value":{"__proto__":{"x":1},"constructor":{"y":2}},"baseVersion":null,"clientTime":1}]}'
    r = client.post("/api/sync/push", data=raw, content_type="application/json")
    record = r.get_json()["results"][0]["record"]
    assert record["value"]["__proto__"] == {"x": 1}


def test_injected_faults_and_reset(client, op):
    client.post("/api/_test/faults", json={"failNext": 2, "status": 503})
    assert push(client, [op()]).status_code == 503
    assert client.get("/api/sync/pull").status_code == 503
    assert client.get("/api/sync/pull").status_code == 200
    push(client, [op()])
    client.post("/api/_test/reset", json={})
    assert client.get("/api/sync/pull").get_json()["items"] == []


def test_testing_endpoints_are_off_by_default(tmp_path):
    from redux_idb_sync_server import create_app

    client = create_app(str(tmp_path / "x.sqlite3")).test_client()
    assert client.post("/api/_test/reset", json={}).status_code == 404


def test_blueprint_in_an_existing_app(tmp_path, op):
    app = Flask("host")

    @app.get("/")
    def home():
        return "host app"

    app.register_blueprint(create_blueprint(str(tmp_path / "x.sqlite3")), url_prefix="/sync-api")
    client = app.test_client()
    assert client.get("/").data == b"host app"
    r = client.post("/sync-api/sync/push", json={"clientId": "t", "ops": [op()]})
    assert r.status_code == 200
    assert json.loads(r.data)["results"][0]["status"] == "applied"


@pytest.mark.skipif(ON_POSTGRES, reason="SQLite's WAL")
def test_sqlite_keeps_its_wal_between_transactions(database, make_client, op):
    # A connection per transaction must not be the database's last: closing that one checkpoints
    # and deletes the WAL, two fsyncs on every write (docs/realtime.md, "Where the time goes").
    client = make_client()
    for _ in range(3):
        assert client.post("/api/sync/push", json={"clientId": "c", "ops": [op()]}).status_code == 200
        assert os.path.exists(database + "-wal")
