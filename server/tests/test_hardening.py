"""Regression tests for hostile or unusual client input: every answer is JSON, never a 500."""

import json

from urllib.parse import quote

LONE = "\\ud83d"  # a JSON escape for a lone high surrogate


def raw_push(client, ops_json, client_id='"t"'):
    body = '{"clientId":%s,"ops":[%s]}' % (client_id, ",".join(ops_json))
    return client.post("/api/sync/push", data=body, content_type="application/json")


def op_json(op_id="o1", item_id="a", value='{"v":1}', client_time="1", collection="files"):
    return (
        '{"opId":"%s","collection":"%s","id":"%s","type":"put","value":%s,"baseVersion":null,"clientTime":%s}'
        % (op_id, collection, item_id, value, client_time)
    )


# ------------------------------------------------------------------ lone surrogates


def test_lone_surrogate_id_is_rejected_per_op_and_the_rest_applies(client):
    r = raw_push(client, [op_json("ok1", "a"), op_json("bad", LONE), op_json("ok2", "b")])
    assert r.status_code == 200, r.data
    results = r.get_json()["results"]
    assert [x["status"] for x in results] == ["applied", "rejected", "applied"]
    assert results[1]["opId"] == "bad" and results[1]["error"]["error"] == "bad_request"
    assert sorted(i["id"] for i in client.get("/api/sync/pull").get_json()["items"]) == ["a", "b"]


def test_lone_surrogate_in_op_id_is_rejected_per_op(client):
    r = raw_push(client, [op_json("x" + LONE, "a"), op_json("ok", "b")])
    assert r.status_code == 200, r.data
    assert [x["status"] for x in r.get_json()["results"]] == ["rejected", "applied"]


def test_low_surrogate_alone_is_rejected_too(client):
    r = raw_push(client, [op_json("o", "\\udc00x")])
    assert r.get_json()["results"][0]["status"] == "rejected"


def test_a_surrogate_pair_is_a_valid_id(client):
    r = raw_push(client, [op_json("o", "\\ud83d\\ude00")])
    assert r.get_json()["results"][0]["status"] == "applied"
    assert r.get_json()["results"][0]["record"]["id"] == "\U0001F600"


def test_lone_surrogate_client_id_is_400(client):
    r = raw_push(client, [op_json()], client_id='"t%s"' % LONE)
    assert r.status_code == 400 and r.get_json()["error"] == "bad_request"


def test_lone_surrogate_op_id_on_a_single_item_put_is_400(client):
    body = '{"opId":"p%s","value":{"v":1},"baseVersion":null,"clientTime":1}' % LONE
    r = client.put("/api/items/files/a", data=body, content_type="application/json")
    assert r.status_code == 400 and r.get_json()["error"] == "bad_request"


def test_values_with_lone_surrogates_round_trip_as_json(client):
    # Values are data: a lone surrogate inside one is stored and served back, escaped.
    r = raw_push(client, [op_json("o", "a", '{"s":"%s","%s":1}' % (LONE, LONE))])
    assert r.status_code == 200 and r.get_json()["results"][0]["status"] == "applied"
    for path in ("/api/sync/pull", "/api/sync/changes", "/api/items/files/a", "/api/_test/history"):
        got = client.get(path)
        assert got.status_code == 200, path
        assert b"\\ud83d" in got.data, path


# ------------------------------------------------------------------ strict JSON


def strict_loads(data):
    def refuse(constant):
        raise AssertionError(f"non-JSON constant {constant} in an answer")

    return json.loads(data, parse_constant=refuse)


def test_non_finite_numbers_anywhere_in_a_body_are_400(client):
    for value in ("NaN", "Infinity", "-Infinity", "1e999", "-1e999", '{"x":[1,NaN]}'):
        r = raw_push(client, [op_json("o-" + value, "a", value)])
        assert r.status_code == 400, value
        assert r.get_json()["error"] == "bad_request"
    for client_time in ("NaN", "Infinity", "1e999"):
        r = raw_push(client, [op_json("t-" + client_time, "a", "1", client_time)])
        assert r.status_code == 400, client_time
    body = '{"opId":"p","value":{"v":Infinity},"baseVersion":null,"clientTime":1}'
    assert client.put("/api/items/files/a", data=body, content_type="application/json").status_code == 400
    # Nothing was stored, so every feed is still strict JSON.
    assert strict_loads(client.get("/api/sync/changes").data)["changes"] == []


def test_answers_are_never_non_json(tmp_path):
    # A record that holds NaN (written by an older server, or by hand) makes the answer a JSON
    # 500, never a body with NaN in it that no client can parse.
    import sqlite3

    from redux_idb_sync_server import create_app

    path = str(tmp_path / "nan.sqlite3")
    client = create_app(path, testing_endpoints=True).test_client()
    db = sqlite3.connect(path)
    db.execute(
        "INSERT INTO items (collection, id, version, updated_at, client_time, deleted, value, seq, op_id)"
        " VALUES ('files', 'n', 1, 1, 1, 0, '{\"v\":NaN}', 1, 'o')"
    )
    db.commit()
    db.close()
    for path_ in ("/api/sync/changes", "/api/sync/pull", "/api/items/files/n"):
        r = client.get(path_)
        assert r.status_code == 500, path_
        assert strict_loads(r.data)["error"] == "internal"


# ------------------------------------------------------------------ auth exemptions


def _host_app(tmp_path, prefix, **options):
    from flask import Flask

    from redux_idb_sync_server import create_blueprint

    app = Flask("host")
    bp = create_blueprint(str(tmp_path / "host.sqlite3"), token="secret", **options)

    @bp.get("/health-records")
    def health_records():
        return {"records": "private"}

    app.register_blueprint(bp, url_prefix=prefix)
    return app.test_client()


def _push_body():
    return {"clientId": "t", "ops": [{"opId": "o", "collection": "files", "id": "a", "type": "put", "value": {"v": 1}, "baseVersion": None, "clientTime": 1}]}


def test_only_the_health_endpoint_is_exempt_from_auth(tmp_path):
    client = _host_app(tmp_path, "/api")
    assert client.get("/api/health").status_code == 200
    assert client.get("/api/health-records").status_code == 401
    assert client.get("/api/health/").status_code in (401, 404) and client.get("/api/healthz").status_code == 401


def test_a_prefix_containing_health_or_test_opens_nothing(tmp_path):
    for prefix in ("/healthcare/api", "/x_test/api"):
        client = _host_app(tmp_path, prefix)
        assert client.get(f"{prefix}/health").status_code == 200, prefix
        r = client.post(f"{prefix}/sync/push", json=_push_body())
        assert r.status_code == 401, prefix
        assert client.get(f"{prefix}/sync/pull").status_code == 401, prefix
        assert client.get(f"{prefix}/_test/stats").status_code == 401, prefix  # not enabled: not exempt


def test_testing_endpoints_are_exempt_only_when_enabled(tmp_path):
    client = _host_app(tmp_path, "/healthcare/api", testing_endpoints=True)
    assert client.get("/healthcare/api/_test/stats").status_code == 200
    assert client.get("/healthcare/api/sync/pull").status_code == 401


def test_stats_count_requests_by_endpoint_not_by_url_substring(tmp_path):
    client = _host_app(tmp_path, "/healthcare/api", testing_endpoints=True)
    auth = {"Authorization": "Bearer secret"}
    client.post("/healthcare/api/sync/push", json=_push_body(), headers=auth)
    client.get("/healthcare/api/sync/changes", headers=auth)
    client.get("/healthcare/api/health")
    requests = client.get("/healthcare/api/_test/stats").get_json()["requests"]
    assert requests["push"] == 1 and requests["changes"] == 1 and requests["health"] == 1, requests
