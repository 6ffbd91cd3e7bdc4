"""Per-user data: tenant A cannot read, write, pull or be notified of tenant B's data, by id
guessing, opId guessing or cursor tricks. Runs on SQLite and (with REDUX_IDB_SYNC_TEST_DATABASE)
on PostgreSQL."""

import json
import time

import pytest

from conftest import ON_POSTGRES

TOKENS = {"token-alice": "alice", "token-bob": "bob", "token-old": {"tenant": "alice", "expires_at": 1000}}
ALICE = {"Authorization": "Bearer token-alice"}
BOB = {"Authorization": "Bearer token-bob"}


@pytest.fixture
def app_client(make_client):
    return make_client(tokens=TOKENS)


def state_of(client):
    return client.application.extensions["redux_idb_sync"]


def push(client, headers, ops):
    return client.post("/api/sync/push", json={"clientId": "c", "ops": ops}, headers=headers)


def put_op(op_id, item_id="a", value=None, base=None):
    return {"opId": op_id, "collection": "files", "id": item_id, "type": "put", "value": value or {"secret": op_id}, "baseVersion": base, "clientTime": 1}


def test_requests_without_a_valid_token_are_401(app_client):
    assert app_client.get("/api/sync/pull").status_code == 401
    assert app_client.get("/api/sync/pull", headers={"Authorization": "Bearer nope"}).status_code == 401
    expired = app_client.get("/api/sync/pull", headers={"Authorization": "Bearer token-old"})
    assert expired.status_code == 401 and expired.headers["WWW-Authenticate"] == "Bearer"
    assert app_client.get("/api/sync/pull", headers=ALICE).status_code == 200


def test_b_cannot_read_a_by_id_pull_or_changes(app_client):
    assert push(app_client, ALICE, [put_op("a1"), put_op("a2", "b")]).status_code == 200
    assert app_client.get("/api/items/files/a", headers=BOB).status_code == 404
    assert app_client.get("/api/sync/pull", headers=BOB).get_json()["items"] == []
    assert app_client.get("/api/sync/changes?since=0", headers=BOB).get_json()["changes"] == []
    assert len(app_client.get("/api/sync/pull", headers=ALICE).get_json()["items"]) == 2


def test_b_writing_the_same_id_writes_its_own_item(app_client):
    push(app_client, ALICE, [put_op("a1", value={"owner": "alice"})])
    # Bob guesses the id and a base version: a conflict with nothing (his item does not exist), never Alice's record.
    guess = push(app_client, BOB, [put_op("b0", base=1)]).get_json()["results"][0]
    assert guess == {"opId": "b0", "status": "conflict", "current": None}
    mine = push(app_client, BOB, [put_op("b1", value={"owner": "bob"})]).get_json()["results"][0]
    assert mine["status"] == "applied" and mine["record"]["version"] == 1
    assert app_client.get("/api/items/files/a", headers=ALICE).get_json()["value"] == {"owner": "alice"}
    assert app_client.get("/api/items/files/a", headers=BOB).get_json()["value"] == {"owner": "bob"}
    deleted = app_client.delete("/api/items/files/a", json={"opId": "b2", "baseVersion": 1}, headers=BOB)
    assert deleted.status_code == 200
    assert app_client.get("/api/items/files/a", headers=ALICE).get_json()["deleted"] is False


def test_guessing_an_opid_of_a_is_no_replay_of_a(app_client):
    push(app_client, ALICE, [put_op("shared-op-id", value={"secret": "alice's"})])
    answer = push(app_client, BOB, [put_op("shared-op-id", value={"mine": 1})]).get_json()["results"][0]
    assert answer["status"] == "applied" and answer["record"]["value"] == {"mine": 1}
    put = app_client.put("/api/items/files/a", json={"opId": "shared-op-id", "value": {"x": 1}, "baseVersion": None}, headers=BOB)
    assert put.get_json().get("duplicate") is True and put.get_json()["record"]["value"] == {"mine": 1}
    assert "alice's" not in json.dumps(app_client.get("/api/_test/history", headers=BOB).get_json())


def test_cursor_tricks_reach_only_the_callers_feed(app_client):
    push(app_client, ALICE, [put_op(f"a{i}", f"k{i}") for i in range(5)])
    # Bob's feed is empty: a cursor from Alice's feed is beyond Bob's head.
    ahead = app_client.get("/api/sync/changes?since=3", headers=BOB)
    assert ahead.status_code == 410 and ahead.get_json()["error"] == "cursor_ahead"
    push(app_client, BOB, [put_op("b1", "mine")])
    changes = app_client.get("/api/sync/changes?since=0&limit=1000", headers=BOB).get_json()
    assert [c["id"] for c in changes["changes"]] == ["mine"] and changes["cursor"] == "1"
    # Each tenant numbers its own feed; a filter by collection does not widen it.
    assert app_client.get("/api/sync/changes?since=0&collections=files", headers=BOB).get_json()["cursor"] == "1"
    assert app_client.get("/api/sync/changes?since=0", headers=ALICE).get_json()["cursor"] == "5"


def test_epochs_history_stats_faults_and_reset_are_per_tenant(app_client):
    push(app_client, ALICE, [put_op("a1")])
    alice_epoch = app_client.get("/api/health", headers=ALICE).get_json()["epoch"]
    bob_epoch = app_client.get("/api/health", headers=BOB).get_json()["epoch"]
    assert alice_epoch != bob_epoch
    assert "epoch" not in app_client.get("/api/health").get_json()  # no tenant, no epoch
    assert app_client.get("/api/_test/stats", headers=BOB).get_json()["appliedOps"] == 0
    assert app_client.get("/api/_test/history", headers=BOB).get_json()["ops"] == []
    app_client.post("/api/_test/faults", json={"failNext": 5, "status": 503}, headers=ALICE)
    assert app_client.get("/api/sync/pull", headers=BOB).status_code == 200
    assert app_client.get("/api/sync/pull", headers=ALICE).status_code == 503
    app_client.post("/api/_test/faults", json={"failNext": 0}, headers=ALICE)
    push(app_client, BOB, [put_op("b1")])
    app_client.post("/api/_test/reset", json={}, headers=ALICE)
    assert app_client.get("/api/sync/pull", headers=ALICE).get_json()["items"] == []
    assert len(app_client.get("/api/sync/pull", headers=BOB).get_json()["items"]) == 1
    assert app_client.get("/api/health", headers=BOB).get_json()["epoch"] == bob_epoch
    assert app_client.get("/api/_test/history", headers=BOB).get_json()["ops"][0]["opId"] == "b1"
    assert app_client.post("/api/_test/reset", json={}, headers={"Authorization": "Bearer nope"}).status_code == 401


def test_notifications_name_the_writing_tenant_only_and_only_after_a_commit(app_client):
    state = state_of(app_client)
    heard = []
    unsubscribe = state.notifier.subscribe(lambda tenant, cursor: heard.append((tenant, cursor)))
    push(app_client, ALICE, [put_op("a1"), put_op("a2", "b")])
    assert heard == [("alice", "2")]
    push(app_client, BOB, [put_op("b1", base=7)])  # a conflict only: the feed did not advance
    app_client.put("/api/items/files/a", json={"opId": "a1", "value": {"v": 1}}, headers=ALICE)  # a replay
    assert heard == [("alice", "2")]
    push(app_client, BOB, [put_op("b2")])
    assert heard == [("alice", "2"), ("bob", "1")]
    unsubscribe()
    push(app_client, BOB, [put_op("b3", "c")])
    assert len(heard) == 2


def test_a_failed_write_publishes_nothing(app_client, monkeypatch):
    state = state_of(app_client)
    heard = []
    state.notifier.subscribe(lambda tenant, cursor: heard.append(tenant))

    def explode(tx, tenant):
        raise RuntimeError("the database went away before commit")

    monkeypatch.setattr(state.storage, "_before_commit", explode)
    assert push(app_client, ALICE, [put_op("a1")]).status_code == 500
    monkeypatch.undo()
    assert heard == []
    assert app_client.get("/api/sync/pull", headers=ALICE).get_json()["items"] == []


def test_tenant_for_token_and_feed_head_work_without_a_request(app_client):
    state = state_of(app_client)
    assert state.tenant_for_token("token-alice") == "alice"
    assert state.tenant_for_token("token-old") is None  # expired
    assert state.tenant_for_token("nope") is None and state.tenant_for_token("") is None
    push(app_client, ALICE, [put_op("a1"), put_op("a2", "b"), put_op("a3", "c")])
    cursor = app_client.get("/api/sync/changes?since=0", headers=ALICE).get_json()["cursor"]
    assert state.feed_head("alice") == cursor == "3"
    assert state.feed_head("bob") == "0"


def test_issued_tokens_are_stored_and_expire(app_client):
    issued = app_client.post("/api/_test/tokens", json={"tenant": "carol", "ttl_ms": 400}).get_json()
    carol = {"Authorization": f"Bearer {issued['token']}"}
    assert issued["tenant"] == "carol" and issued["expires_at"] > 0
    assert app_client.get("/api/sync/pull", headers=carol).status_code == 200
    assert push(app_client, carol, [put_op("c1")]).status_code == 200
    assert app_client.get("/api/sync/pull", headers=ALICE).get_json()["items"] == []
    # Another app on the same database (another worker, the socket process) accepts it too.
    assert state_of(app_client).storage.token_tenant(issued["token"])[0] == "carol"
    time.sleep(0.5)
    assert app_client.get("/api/sync/pull", headers=carol).status_code == 401
    assert state_of(app_client).tenant_for_token(issued["token"]) is None
    forever = app_client.post("/api/_test/tokens", json={"tenant": "dave"}).get_json()
    assert forever["expires_at"] is None
    assert app_client.post("/api/_test/tokens", json={"tenant": "", "ttl_ms": 5}).status_code == 400


def test_an_authenticate_hook_replaces_the_token_check(make_client):
    client = make_client(authenticate=lambda request: request.headers.get("X-User"))
    assert client.get("/api/sync/pull").status_code == 401
    push(client, {"X-User": "erin"}, [put_op("e1")])
    assert client.get("/api/sync/pull", headers={"X-User": "frank"}).get_json()["items"] == []
    assert len(client.get("/api/sync/pull", headers={"X-User": "erin"}).get_json()["items"]) == 1


def test_the_legacy_single_token_is_the_default_tenant(make_client):
    client = make_client(token="secret")
    push(client, {"Authorization": "Bearer secret"}, [put_op("d1")])
    assert state_of(client).tenant_for_token("secret") == "default"
    assert state_of(client).feed_head("default") == "1"


@pytest.mark.skipif(not ON_POSTGRES, reason="pg_notify needs PostgreSQL")
def test_postgres_notifies_on_commit_with_the_tenant_and_cursor(app_client):
    backend = state_of(app_client).storage.backend
    listener = backend.connect_listener()
    try:
        push(app_client, ALICE, [put_op("a1"), put_op("a2", "b")])
        push(app_client, BOB, [put_op("b1", base=3)])  # conflict: no commit that advances
        push(app_client, BOB, [put_op("b2")])
        got = [json.loads(n.payload) for n in listener.notifies(timeout=1.0, stop_after=2)]
        assert got == [{"tenant": "alice", "cursor": "2"}, {"tenant": "bob", "cursor": "1"}]
        assert list(listener.notifies(timeout=0.3)) == []
    finally:
        listener.close()
