"""The socket's incremental pull (docs/protocol.md, "Real-time channel"): ``pull`` answered with
exactly what ``POST /sync/changes`` answers, on the real API extension and its database (SQLite,
or PostgreSQL with ``REDUX_IDB_SYNC_TEST_DATABASE``)."""

import asyncio
import json
import time

import pytest

websockets = pytest.importorskip("websockets")

from websockets.asyncio.client import connect  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

from redux_idb_sync_server.realtime import CloseCode, RealtimeServer  # noqa: E402

TOKENS = {"ta": "tenant-a", "tb": "tenant-b"}
A = {"Authorization": "Bearer ta"}
B = {"Authorization": "Bearer tb"}


@pytest.fixture
def api(make_client):
    """The API's test client, on the test database, with two tenants."""
    return make_client(tokens=TOKENS)


def state_of(api):
    return api.application.extensions["redux_idb_sync"]


def run(api, scenario):
    """Runs ``scenario(url, realtime)`` against a socket server whose seam is ``api``'s extension."""

    async def main():
        realtime = RealtimeServer(state_of(api))
        port = await realtime.start()
        try:
            await asyncio.wait_for(scenario(f"ws://127.0.0.1:{port}", realtime), timeout=20)
        finally:
            await realtime.close()

    asyncio.run(main())


async def ready(url, token):
    ws = await connect(url, max_size=None)
    await ws.send(json.dumps({"type": "hello", "protocol": 1, "token": token}))
    message = json.loads(await ws.recv())
    assert message["type"] == "ready"
    return ws, message


async def pull(ws, id_, **params):
    await ws.send(json.dumps({"type": "pull", "id": id_, **params}))
    return json.loads(await ws.recv())


async def closed_with(ws):
    with pytest.raises(ConnectionClosed) as info:
        while True:
            await ws.recv()
    return info.value.rcvd.code if info.value.rcvd else None


def http_changes(api, headers, **params):
    response = api.post("/api/sync/changes", json=params, headers=headers)
    return response.status_code, response.get_json()


def push(api, headers, ops):
    response = api.post("/api/sync/push", json={"clientId": "c1", "ops": ops}, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def puts(collection, ids, prefix):
    return [
        {"opId": f"{prefix}-{collection}-{i}", "collection": collection, "id": i, "type": "put", "value": {"id": i, "by": prefix}, "baseVersion": None, "clientTime": 1}
        for i in ids
    ]


def without_envelope(message, id_):
    assert message["type"] == "changes" and message["id"] == id_, message
    return {k: v for k, v in message.items() if k not in ("type", "id")}


def test_ready_lists_pull_in_its_features(api):
    async def scenario(url, realtime):
        ws, message = await ready(url, "ta")
        assert message["features"] == ["pull"]
        assert message["protocol"] == 1 and "cursor" in message and "heartbeatMs" in message
        await ws.close()

    run(api, scenario)


def test_a_socket_pull_answers_what_post_sync_changes_answers_pages_and_filter_included(api):
    push(api, A, puts("files", ["a", "b", "c"], "p1"))
    push(api, A, puts("notes", ["n1", "n2"], "p2"))
    push(api, A, [{"opId": "del-b", "collection": "files", "id": "b", "type": "delete", "baseVersion": 1, "clientTime": 2}])

    async def scenario(url, realtime):
        ws, _ = await ready(url, "ta")
        whole = without_envelope(await pull(ws, "all", since="0"), "all")
        assert whole == http_changes(api, A, since="0")[1]
        assert len(whole["changes"]) == 5 and whole["hasMore"] is False
        assert any(c["deleted"] for c in whole["changes"])  # the tombstone is in the page

        # Paging: a limit below the number of changes, then on from the returned cursor.
        first = without_envelope(await pull(ws, "page-1", since="0", limit=2), "page-1")
        assert first == http_changes(api, A, since="0", limit=2)[1]
        assert first["hasMore"] is True and len(first["changes"]) == 2
        second = without_envelope(await pull(ws, "page-2", since=first["cursor"], limit=2), "page-2")
        assert second == http_changes(api, A, since=first["cursor"], limit=2)[1]
        assert second["hasMore"] is True and second["changes"][0]["seq"] > first["changes"][-1]["seq"]
        third = without_envelope(await pull(ws, "page-3", since=second["cursor"], limit=2), "page-3")
        assert third == http_changes(api, A, since=second["cursor"], limit=2)[1]
        assert third["hasMore"] is False and third["cursor"] == whole["cursor"]

        # A collections filter.
        notes = without_envelope(await pull(ws, "notes", since="0", collections=["notes"]), "notes")
        assert notes == http_changes(api, A, since="0", collections=["notes"])[1]
        assert [c["id"] for c in notes["changes"]] == ["n1", "n2"]

        # Defaults (no since, no limit) as the route's.
        assert without_envelope(await pull(ws, "defaults"), "defaults") == http_changes(api, A)[1]

        # Up to date: an empty page at the head, the cursor unchanged.
        empty = without_envelope(await pull(ws, "empty", since=whole["cursor"]), "empty")
        assert empty == http_changes(api, A, since=whole["cursor"])[1]
        assert empty["changes"] == [] and empty["cursor"] == whole["cursor"]
        await ws.close()

    run(api, scenario)


def test_a_cursor_beyond_the_head_and_bad_parameters_fail_that_pull_only(api):
    push(api, A, puts("files", ["a"], "p"))

    async def scenario(url, realtime):
        ws, message = await ready(url, "ta")
        status, body = http_changes(api, A, since="999")
        assert status == 410
        ahead = await pull(ws, "ahead", since="999")
        assert ahead == {"type": "pullFailed", "id": "ahead", "status": 410, "error": "cursor_ahead", "message": body["message"], "epoch": body["epoch"]}
        bad = [
            {"since": "0", "limit": 0},
            {"since": "0", "limit": 1001},
            {"since": "0", "limit": True},
            {"since": 0},
            {"since": "-1"},
            {"since": "0", "collections": "files"},
            {"since": "0", "collections": ["no spaces"]},
        ]
        for n, params in enumerate(bad):
            status, body = http_changes(api, A, **params)
            assert status == 400
            answer = await pull(ws, f"bad-{n}", **params)
            assert answer == {"type": "pullFailed", "id": f"bad-{n}", "status": 400, "error": "bad_request", "message": body["message"]}
        # The socket is still open and answers the next pull.
        after = without_envelope(await pull(ws, "after", since="0"), "after")
        assert after == http_changes(api, A, since="0")[1] and len(after["changes"]) == 1
        await ws.send(json.dumps({"type": "ping", "t": 3}))
        assert json.loads(await ws.recv()) == {"type": "pong", "t": 3}
        await ws.close()

    run(api, scenario)


@pytest.mark.parametrize(
    "message",
    [
        {"type": "pull", "since": "0"},
        {"type": "pull", "id": 5, "since": "0"},
        {"type": "pull", "id": None, "since": "0"},
        {"type": "pull", "id": "", "since": "0"},
        {"type": "pull", "id": "x" * 65, "since": "0"},
    ],
)
def test_a_pull_without_a_valid_id_closes_with_4000(api, message):
    async def scenario(url, realtime):
        ws, _ = await ready(url, "ta")
        await ws.send(json.dumps(message))
        assert await closed_with(ws) == CloseCode.BAD_MESSAGE

    run(api, scenario)


def test_an_id_of_64_characters_is_accepted(api):
    async def scenario(url, realtime):
        ws, _ = await ready(url, "ta")
        answer = await pull(ws, "x" * 64, since="0")
        assert answer["type"] == "changes" and answer["id"] == "x" * 64
        await ws.close()

    run(api, scenario)


def test_a_socket_pulls_its_own_tenants_feed_only(api):
    push(api, A, puts("files", ["a1", "a2", "a3", "a4"], "alice"))
    push(api, B, puts("files", ["b1"], "bob"))

    async def scenario(url, realtime):
        b, _ = await ready(url, "tb")
        mine = without_envelope(await pull(b, "b-all", since="0"), "b-all")
        assert mine == http_changes(api, B, since="0")[1]
        assert [c["id"] for c in mine["changes"]] == ["b1"]
        assert all(c["value"]["by"] == "bob" for c in mine["changes"])
        assert mine["epoch"] == http_changes(api, B, since="0")[1]["epoch"] != http_changes(api, A, since="0")[1]["epoch"]

        # A's cursors: for B they mean what the route says they mean in B's feed.
        a_page = http_changes(api, A, since="0", limit=1)[1]
        a_head = http_changes(api, A, since="0")[1]["cursor"]
        for n, cursor in enumerate([a_page["cursor"], a_head]):
            status, body = http_changes(api, B, since=cursor)
            answer = await pull(b, f"a-cursor-{n}", since=cursor)
            if status == 200:
                assert without_envelope(answer, f"a-cursor-{n}") == body
                assert all(c["value"]["by"] == "bob" for c in answer["changes"])
            else:
                assert answer == {"type": "pullFailed", "id": f"a-cursor-{n}", "status": status, "error": body["error"], "message": body["message"], "epoch": body["epoch"]}
        # A's head (4) is beyond B's (1): that one is the 410.
        assert answer["type"] == "pullFailed" and answer["status"] == 410
        await b.close()

    run(api, scenario)


def test_a_token_that_expires_after_hello_closes_the_socket_at_the_next_pull(api):
    issued = api.post("/api/_test/tokens", json={"tenant": "tenant-a", "ttl_ms": 2000}, headers=A).get_json()

    async def scenario(url, realtime):
        ws, _ = await ready(url, issued["token"])
        first = await pull(ws, "before", since="0")
        assert first["type"] == "changes"
        await asyncio.sleep(max(0.0, issued["expires_at"] / 1000 - time.time()) + 0.05)
        await ws.send(json.dumps({"type": "pull", "id": "after", "since": "0"}))
        with pytest.raises(ConnectionClosed) as info:
            answer = await ws.recv()
            pytest.fail(f"the pull was answered: {answer}")
        assert info.value.rcvd.code == CloseCode.TOKEN_EXPIRED

    run(api, scenario)


def test_pulls_sent_back_to_back_are_answered_in_order_with_their_ids(api):
    push(api, A, puts("files", [f"i{n}" for n in range(30)], "p"))

    async def scenario(url, realtime):
        ws, _ = await ready(url, "ta")
        # A large page first, then small ones: each answer must still come in the order asked.
        asked = [("big", {"since": "0", "limit": 1000}), ("small", {"since": "29", "limit": 1}), ("bad", {"limit": 0}), ("mid", {"since": "10", "limit": 5})]
        for id_, params in asked:
            await ws.send(json.dumps({"type": "pull", "id": id_, **params}))
        answers = [json.loads(await ws.recv()) for _ in asked]
        assert [a["id"] for a in answers] == [id_ for id_, _ in asked]
        assert [a["type"] for a in answers] == ["changes", "changes", "pullFailed", "changes"]
        assert len(answers[0]["changes"]) == 30 and [c["seq"] for c in answers[1]["changes"]] == [30]
        assert [c["seq"] for c in answers[3]["changes"]] == [11, 12, 13, 14, 15]
        await ws.close()

    run(api, scenario)


def test_a_database_failure_fails_the_pull_and_keeps_the_socket(api, monkeypatch, caplog):
    storage = state_of(api).storage
    real = storage.changes

    def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    async def scenario(url, realtime):
        ws, _ = await ready(url, "ta")
        monkeypatch.setattr(storage, "changes", broken)
        failed = await pull(ws, "down", since="0")
        status, body = http_changes(api, A, since="0")  # the route's answer to the same failure
        assert failed == {"type": "pullFailed", "id": "down", "status": status, "error": body["error"], "message": body["message"]}
        assert status == 500 and "database" not in body["message"]
        monkeypatch.setattr(storage, "changes", real)
        assert (await pull(ws, "up", since="0"))["type"] == "changes"
        await ws.close()

    run(api, scenario)
    assert any("socket pull failed" in r.getMessage() for r in caplog.records)


def test_socket_pulls_are_counted_apart_from_http_ones_when_the_testing_endpoints_are_on(api):
    async def scenario(url, realtime):
        ws, _ = await ready(url, "ta")
        await pull(ws, "1", since="0")
        await pull(ws, "2", since="0", limit=0)
        await ws.close()

    http_changes(api, A, since="0")
    run(api, scenario)
    counts = api.get("/api/_test/stats", headers=A).get_json()["requests"]
    assert counts["socket_changes"] == 2 and counts["changes"] == 1


def test_socket_pulls_write_no_count_when_the_testing_endpoints_are_off(make_client):
    api = make_client(tokens=TOKENS, testing_endpoints=False)

    async def scenario(url, realtime):
        ws, _ = await ready(url, "ta")
        assert (await pull(ws, "1", since="0"))["type"] == "changes"
        await ws.close()

    run(api, scenario)
    assert state_of(api).storage.request_counts("tenant-a") == {}


def test_the_embedded_server_pokes_and_answers_pulls_from_its_own_thread(api):
    """``python3 server/app.py --realtime-port``: the socket server on a thread of the API process."""
    from redux_idb_sync_server.realtime.embedded import start_in_thread

    state = state_of(api)
    port, stop = start_in_thread(state, state.notifier)

    async def scenario():
        ws, hello_ready = await ready(f"ws://127.0.0.1:{port}", "ta")
        assert hello_ready["features"] == ["pull"]
        await asyncio.to_thread(push, api, A, puts("files", ["a", "b"], "p"))
        poke = json.loads(await ws.recv())
        assert poke["type"] == "poke" and poke["cursor"] == "2"
        answer = without_envelope(await pull(ws, "after-poke", since=hello_ready["cursor"]), "after-poke")
        assert answer == http_changes(api, A, since=hello_ready["cursor"])[1]
        assert [c["id"] for c in answer["changes"]] == ["a", "b"] and answer["cursor"] == poke["cursor"]
        await ws.close()

    try:
        asyncio.run(asyncio.wait_for(scenario(), timeout=20))
    finally:
        stop()


def test_the_socket_process_answers_pulls(api, database):
    """``python3 -m redux_idb_sync_server.realtime``: its own process beside the API (LISTEN on
    PostgreSQL, polling the heads on SQLite), answering pulls from the shared database."""
    import os
    import subprocess
    import sys

    server_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": server_dir}
    command = [sys.executable, "-m", "redux_idb_sync_server.realtime", "--port", "0", "--database", database, "--tokens", json.dumps(TOKENS), "--poll-ms", "20"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert line.startswith("LISTENING ws://"), line
        url = line.split()[1]

        async def scenario():
            ws, hello_ready = await ready(url, "ta")
            assert hello_ready["features"] == ["pull"]
            await asyncio.to_thread(push, api, A, puts("notes", ["n"], "p"))
            poke = json.loads(await ws.recv())
            assert poke["type"] == "poke"
            answer = without_envelope(await pull(ws, "1", since=hello_ready["cursor"], collections=["notes"]), "1")
            assert answer == http_changes(api, A, since=hello_ready["cursor"], collections=["notes"])[1]
            assert [c["id"] for c in answer["changes"]] == ["n"]
            ahead = await pull(ws, "2", since="99")
            assert ahead["type"] == "pullFailed" and ahead["status"] == 410 and ahead["error"] == "cursor_ahead"
            await ws.close()

        asyncio.run(asyncio.wait_for(scenario(), timeout=20))
    finally:
        process.terminate()
        process.wait(10)
