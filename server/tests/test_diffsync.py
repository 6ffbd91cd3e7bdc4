"""Patch operations, field-level merge and compression through the HTTP API (docs/protocol.md, version 3)."""

import gzip
import json

import pytest

BODY = "lorem ipsum " * 850  # about 10 kB


def push(client, *ops, headers=None):
    return client.post("/api/sync/push", json={"clientId": "c", "ops": list(ops)}, headers=headers or {})


def create(client, op, **value):
    item = {"id": "a", "title": "t", "body": BODY, **value}
    answer = push(client, op(value=item)).get_json()["results"][0]
    assert answer["status"] == "applied"
    return answer["record"]


def patch_op(op, patch, base, baseVersion, **over):
    return op(type="patch", value=..., patch=patch, base=base, baseVersion=baseVersion, **over)


def test_health_says_protocol_4(client):
    assert client.get("/api/health").get_json()["protocol"] == 4


def test_a_patch_on_the_current_version_applies_like_a_put(client, op):
    create(client, op)
    result = push(client, patch_op(op, {"title": "new"}, {"title": "t"}, 1)).get_json()["results"][0]
    assert result["status"] == "applied"
    assert result["record"]["version"] == 2
    assert result["record"]["value"] == {"id": "a", "title": "new", "body": BODY}
    assert client.get("/api/items/files/a").get_json()["value"]["title"] == "new"


def test_a_patch_on_a_stale_version_merges_fields_changed_on_the_other_side_and_is_in_the_feed(client, op):
    create(client, op)
    push(client, patch_op(op, {"body": "theirs"}, {"body": BODY}, 1))
    result = push(client, patch_op(op, {"title": "mine"}, {"title": "t"}, 1)).get_json()["results"][0]
    assert result["status"] == "applied"
    assert result["record"]["version"] == 3
    assert result["record"]["value"] == {"id": "a", "title": "mine", "body": "theirs"}
    feed = client.get("/api/sync/changes?since=2").get_json()["changes"]
    assert [c["version"] for c in feed] == [3] and feed[0]["value"]["title"] == "mine"


def test_the_same_field_changed_on_both_sides_is_a_conflict_naming_the_field_and_writes_nothing(client, op):
    create(client, op)
    push(client, patch_op(op, {"title": "theirs"}, {"title": "t"}, 1))
    mine = patch_op(op, {"title": "mine", "extra": 1}, {"title": "t", "extra": None}, 1)
    result = push(client, mine).get_json()["results"][0]
    assert result["status"] == "conflict"
    assert result["fields"] == ["/title"]
    assert result["current"]["version"] == 2 and result["current"]["value"]["title"] == "theirs"
    assert "extra" not in client.get("/api/items/files/a").get_json()["value"]
    # Not decided: the same opId may be sent again after the client decided (force takes it).
    again = push(client, {**mine, "force": True}).get_json()["results"][0]
    assert again["status"] == "applied" and again["record"]["value"]["title"] == "mine"


def test_a_replayed_patch_is_a_duplicate(client, op):
    create(client, op)
    once = patch_op(op, {"title": "x"}, {"title": "t"}, 1)
    push(client, once)
    result = push(client, once).get_json()["results"][0]
    assert result["status"] == "duplicate" and result["record"]["version"] == 2


def test_a_patch_against_a_missing_or_deleted_item_is_a_conflict(client, op):
    missing = push(client, patch_op(op, {"title": "x"}, {"title": "t"}, 1)).get_json()["results"][0]
    assert missing["status"] == "conflict" and missing["current"] is None
    create(client, op)
    push(client, op(type="delete", value=None, baseVersion=1))
    deleted = push(client, patch_op(op, {"title": "x"}, {"title": "t"}, 1)).get_json()["results"][0]
    assert deleted["status"] == "conflict" and deleted["current"]["deleted"] is True


def test_a_malformed_patch_is_rejected_alone(client, op):
    create(client, op)
    bad = [
        patch_op(op, ["title"], {}, 1),
        patch_op(op, {"title": "x"}, {}, 1),
        patch_op(op, {"title": "x"}, None, 1),
        op(type="patch", patch={"title": "x"}, base={"title": "t"}, baseVersion=1),  # carries a value too
        op(patch={"title": "x"}, base={"title": "t"}, baseVersion=1),  # a put with a patch
    ]
    good = patch_op(op, {"title": "ok"}, {"title": "t"}, 1)
    results = push(client, *bad, good).get_json()["results"]
    assert [r["status"] for r in results] == ["rejected"] * 5 + ["applied"]
    assert "malformed patch" in results[0]["error"]["message"]


def test_a_gzip_request_body_is_accepted(client, op):
    raw = json.dumps({"clientId": "c", "ops": [op(value={"id": "a", "body": BODY})]}).encode()
    answer = client.post("/api/sync/push", data=gzip.compress(raw), headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert answer.status_code == 200 and answer.get_json()["results"][0]["status"] == "applied"


def test_a_browser_on_another_origin_may_send_a_gzip_push(make_client):
    # A browser asks before a cross-origin POST with non-simple headers; the client sends
    # Content-Encoding: gzip with every push of 1 kB or more. Without it in the preflight's answer
    # the browser never sends the push, and the op waits in the outbox forever.
    pytest.importorskip("flask_cors")
    client = make_client(token="secret")
    sent = ["accept", "authorization", "content-type", "content-encoding"]
    answer = client.options(
        "/api/sync/push",
        headers={"Origin": "http://127.0.0.1:5173", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": ", ".join(sent)},
    )
    assert answer.status_code == 200
    allowed = {h.strip().lower() for h in answer.headers.get("Access-Control-Allow-Headers", "").split(",")}
    assert set(sent) <= allowed


def test_a_zip_bomb_is_413_and_nothing_is_written(make_client, op):
    client = make_client(max_body_bytes=64 * 1024)
    inflated = json.dumps({"clientId": "c", "ops": [op(value={"id": "a", "body": "0" * (8 << 20)})]}).encode()
    bomb = gzip.compress(inflated)
    assert len(bomb) < 64 * 1024
    answer = client.post("/api/sync/push", data=bomb, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert answer.status_code == 413 and answer.get_json()["error"] == "payload_too_large"
    assert client.get("/api/items/files/a").status_code == 404


def test_an_unknown_content_encoding_is_415_and_a_broken_gzip_is_400(client, op):
    raw = json.dumps({"clientId": "c", "ops": [op()]}).encode()
    answer = client.post("/api/sync/push", data=raw, headers={"Content-Type": "application/json", "Content-Encoding": "br"})
    assert answer.status_code == 415 and answer.headers["Accept-Encoding"] == "gzip"
    answer = client.post("/api/sync/push", data=raw, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert answer.status_code == 400 and "gzip" in answer.get_json()["message"]
    assert client.get("/api/items/files/a").status_code == 404


def test_answers_are_gzip_compressed_when_accepted(client, op):
    create(client, op)
    plain = client.get("/api/sync/pull")
    assert "Content-Encoding" not in plain.headers
    packed = client.get("/api/sync/pull", headers={"Accept-Encoding": "gzip"})
    assert packed.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in packed.headers["Vary"]
    assert json.loads(gzip.decompress(packed.data)) == plain.get_json()
    assert len(packed.data) < len(plain.data) / 5
    # Small answers stay plain.
    assert "Content-Encoding" not in client.get("/api/health", headers={"Accept-Encoding": "gzip"}).headers
