"""Regression tests for hostile or unusual client input: every answer is JSON, never a 500."""

import json


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
        "INSERT INTO items (tenant, collection, id, version, updated_at, client_time, deleted, value, seq, op_id)"
        " VALUES ('default', 'files', 'n', 1, 1, 1, 0, '{\"v\":NaN}', 1, 'o')"
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


# ------------------------------------------------------------------ input handling


def test_client_time_must_be_a_finite_number_in_range(client):
    cases = [("big", "1e300"), ("neg", "-1"), ("over", str(2**53 + 1)), ("str", '"5"')]
    r = raw_push(client, [op_json(f"ct-{name}", name, "1", t) for name, t in cases] + [op_json("ct-ok", "ok", "1", str(2**53))])
    assert r.status_code == 200, r.data
    results = r.get_json()["results"]
    assert [x["status"] for x in results] == ["rejected"] * 4 + ["applied"], results
    assert all(x["error"]["message"].startswith("clientTime") for x in results[:4])
    put = client.put("/api/items/files/p", json={"opId": "p", "value": 1, "baseVersion": None, "clientTime": 1e300})
    assert put.status_code == 400 and put.get_json()["error"] == "bad_request"


def test_client_time_is_rounded_half_up(client):
    r = raw_push(client, [op_json("r1", "a", "1", "1.5"), op_json("r2", "b", "1", "2.5"), op_json("r3", "c", "1", "2.4999")])
    assert [x["record"]["clientTime"] for x in r.get_json()["results"]] == [2, 3, 2]


def test_since_and_limit_are_ascii_decimal_within_int64(client):
    for query in ("since=%C2%B2", "since=%D9%A1", "since=" + str(10**30), f"since={2**63}", "since=-1", "since=1.0", "since=+1",
                  "limit=%C2%B2", "limit=00000000001", "limit=1e2"):
        r = client.get(f"/api/sync/changes?{query}")
        assert r.status_code == 400, query
        assert r.get_json()["error"] == "bad_request", query
    assert client.get("/api/sync/changes?since=0&limit=1000").status_code == 200
    assert client.get("/api/sync/changes?since=&limit=0001").status_code == 200


def test_item_writes_take_collection_id_and_type_from_the_path(client):
    for extra in ({"collection": "other"}, {"id": "b"}, {"type": "delete"}):
        body = {"opId": f"x-{list(extra)[0]}", "value": {"v": 1}, "baseVersion": None, "clientTime": 1, **extra}
        r = client.put("/api/items/docs/a", json=body)
        assert r.status_code == 400 and r.get_json()["error"] == "bad_request", extra
    assert client.get("/api/sync/pull").get_json()["items"] == []
    same = {"opId": "same", "collection": "docs", "id": "a", "type": "put", "value": {"v": 1}, "baseVersion": None, "clientTime": 1}
    assert client.put("/api/items/docs/a", json=same).status_code == 200
    r = client.delete("/api/items/docs/a", json={"opId": "del", "type": "put", "baseVersion": 1, "clientTime": 1})
    assert r.status_code == 400


def test_collection_names_match_in_full(client, op):
    r = client.put("/api/items/docs%0A/a", json={"opId": "nl", "value": {"v": 1}, "baseVersion": None, "clientTime": 1})
    assert r.status_code == 400 and r.get_json()["error"] == "bad_request"
    assert client.get("/api/items/docs%0A/a").status_code == 400
    result = client.post("/api/sync/push", json={"clientId": "t", "ops": [op(collection="docs\n")]}).get_json()["results"][0]
    assert result["status"] == "rejected"
    assert client.get("/api/sync/pull?collections=docs%0A").status_code == 400
    assert client.get("/api/sync/changes?collections=files,docs%0A").status_code == 400


def test_errors_raised_inside_the_blueprint_keep_their_status_and_a_code(tmp_path):
    from flask import Flask, abort

    from redux_idb_sync_server import create_blueprint

    app = Flask("host")
    bp = create_blueprint(str(tmp_path / "e.sqlite3"))

    @bp.get("/slow-down")
    def slow_down():
        abort(429)

    @bp.get("/boom")
    def boom():
        raise RuntimeError("secret detail")

    app.register_blueprint(bp, url_prefix="/api")
    client = app.test_client()
    r = client.get("/api/slow-down")
    assert r.status_code == 429 and r.get_json()["error"] == "too_many_requests"
    r = client.get("/api/boom")
    assert r.status_code == 500 and r.get_json() == {"error": "internal", "message": "internal server error"}


def test_app_level_http_errors_are_json(client):
    r = client.open("/api/health", method="TRACE")
    assert r.status_code == 405 and r.get_json()["error"] == "method_not_allowed"
    assert "GET" in r.headers.get("Allow", "")


def _raw_http(port, request_bytes):
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request_bytes)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    return head.decode("latin-1"), body


def test_errors_from_the_http_server_itself_are_json(tmp_path):
    import threading

    import app as server_app
    from redux_idb_sync_server import create_app

    server = server_app.make_json_server("127.0.0.1", 0, create_app(str(tmp_path / "w.sqlite3")))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        for request_bytes, status in (
            (b"GET /api/" + b"x" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
            (b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"y" * 70000 + b"\r\n\r\n", 431),
        ):
            head, body = _raw_http(server.server_port, request_bytes)
            assert head.split(" ")[1] == str(status), head
            assert "application/json" in head.lower()
            parsed = json.loads(body)
            assert set(parsed) == {"error", "message"} and isinstance(parsed["error"], str)
    finally:
        server.shutdown()
        thread.join(5)


# ------------------------------------------------------------------ the depth rule


def nested(steps, leaf, array=False):
    value = leaf
    for _ in range(steps):
        value = [value] if array else {"d": value}
    return value


def mixed(steps, leaf):
    value = leaf
    for i in range(steps):
        value = [value] if i % 2 else {"m": value}
    return value


def test_depth_100_is_accepted_and_101_refused(client):
    # The depth of a value is the largest number of property/index steps from its root to
    # anything inside it: 1, {} and [] are 0; {"a": 1} and [1] are 1.
    cases = [
        ("a primitive", "x", "applied"),
        ("objects, depth 100", nested(100, 1), "applied"),
        ("objects, depth 101", nested(101, 1), "rejected"),
        ("arrays, depth 100", nested(100, 1, array=True), "applied"),
        ("arrays, depth 101", nested(101, 1, array=True), "rejected"),
        ("mixed, depth 100", mixed(100, "x"), "applied"),
        ("mixed, depth 101", mixed(101, "x"), "rejected"),
        ("{} at depth 100", nested(100, {}), "applied"),
        ("{} at depth 101", nested(101, {}), "rejected"),
        ("[] at depth 101", nested(101, [], array=True), "rejected"),
        ("a primitive leaf at depth 100 beside a shallow one", {"shallow": 1, "deep": nested(99, "x")}, "applied"),
        ("a primitive leaf at depth 101 beside a shallow one", {"shallow": 1, "deep": nested(100, "x")}, "rejected"),
    ]
    ops = [
        {"opId": f"depth-{i}", "collection": "files", "id": f"d{i}", "type": "put", "value": value, "baseVersion": None, "clientTime": 1}
        for i, (_, value, _) in enumerate(cases)
    ]
    results = client.post("/api/sync/push", json={"clientId": "t", "ops": ops}).get_json()["results"]
    assert [(name, r["status"]) for (name, _, _), r in zip(cases, results)] == [(name, expected) for name, _, expected in cases]
    assert all("deeper than 100" in r["error"]["message"] for r in results if r["status"] == "rejected")


def test_the_depth_rule_holds_on_single_item_writes(client):
    ok = client.put("/api/items/files/d100", json={"opId": "d100", "value": nested(100, 1), "baseVersion": None, "clientTime": 1})
    assert ok.status_code == 200
    deep = client.put("/api/items/files/d101", json={"opId": "d101", "value": nested(101, 1), "baseVersion": None, "clientTime": 1})
    assert deep.status_code == 400 and deep.get_json()["error"] == "bad_request"


def test_lengths_count_utf16_code_units_as_javascript_does(client):
    # "\U0001F600" is one code point but two UTF-16 code units, as the client counts it.
    emoji = "\\ud83d\\ude00"
    r = raw_push(client, [op_json("len-256", emoji * 256), op_json("len-257", emoji * 256 + "x"), op_json(emoji * 64, "b"), op_json(emoji * 64 + "x", "c")])
    assert [x["status"] for x in r.get_json()["results"]] == ["applied", "rejected", "applied", "rejected"]
