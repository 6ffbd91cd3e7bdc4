"""The socket server of docs/protocol.md ("Real-time channel") against a stand-in of the API's
extension: tokens, tenants, the feed head and an in-process notifier."""

import asyncio
import json
import threading

import pytest

websockets = pytest.importorskip("websockets")

from websockets.asyncio.client import connect  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

from redux_idb_sync_server.realtime import CloseCode, RealtimeServer  # noqa: E402
from redux_idb_sync_server.realtime.fanout import follow_notifier  # noqa: E402


class Notifier:
    def __init__(self):
        self.callbacks = []

    def publish(self, tenant, cursor):
        for callback in list(self.callbacks):
            callback(tenant, cursor)

    def subscribe(self, callback):
        self.callbacks.append(callback)
        return lambda: self.callbacks.remove(callback)


class Seam:
    """What the socket server needs of the API extension."""

    def __init__(self):
        self.tokens = {"ta": "tenant-a", "tb": "tenant-b"}
        self.heads = {"tenant-a": "7", "tenant-b": "3"}

    def tenant_for_token(self, token):
        return self.tokens.get(token)

    def feed_head(self, tenant):
        return self.heads.get(tenant, "0")


def run(scenario, heartbeat_ms=15000, hello_timeout_s=10.0):
    async def main():
        seam = Seam()
        realtime = RealtimeServer(seam, heartbeat_ms=heartbeat_ms, hello_timeout_s=hello_timeout_s)
        port = await realtime.start()
        try:
            await asyncio.wait_for(scenario(f"ws://127.0.0.1:{port}", realtime, seam), timeout=10)
        finally:
            await realtime.close()

    asyncio.run(main())


async def hello(url, token, protocol=1):
    ws = await connect(url)
    await ws.send(json.dumps({"type": "hello", "protocol": protocol, "token": token}))
    return ws


async def closed_with(ws):
    with pytest.raises(ConnectionClosed) as info:
        while True:
            await ws.recv()
    return info.value.rcvd.code if info.value.rcvd else None


def test_hello_then_ready_with_the_tenants_head_then_pokes_for_that_tenant_only():
    async def scenario(url, realtime, seam):
        a = await hello(url, "ta")
        b = await hello(url, "tb")
        ready_a = json.loads(await a.recv())
        ready_b = json.loads(await b.recv())
        assert ready_a["type"] == "ready" and ready_a["cursor"] == "7" and ready_a["protocol"] == 1
        assert ready_a["heartbeatMs"] == 15000 and isinstance(ready_a["serverTime"], int)
        assert ready_b["cursor"] == "3"
        realtime.publish("tenant-a", "8", 1234)
        poke = json.loads(await a.recv())
        assert poke == {"type": "poke", "cursor": "8", "at": 1234}
        # Tenant B hears nothing of A's write: a ping is answered before anything else.
        await b.send(json.dumps({"type": "ping", "t": 5}))
        assert json.loads(await b.recv()) == {"type": "pong", "t": 5}
        await a.close()
        await b.close()

    run(scenario)


def test_a_poke_without_a_cursor_carries_the_feed_head():
    async def scenario(url, realtime, seam):
        a = await hello(url, "ta")
        await a.recv()
        seam.heads["tenant-a"] = "11"
        realtime.publish("tenant-a", None, 99)
        assert json.loads(await a.recv()) == {"type": "poke", "cursor": "11", "at": 99}
        await a.close()

    run(scenario)


@pytest.mark.parametrize(
    "first, code",
    [
        ({"type": "hello", "protocol": 1, "token": "nope"}, CloseCode.UNAUTHORIZED),
        ({"type": "hello", "protocol": 1, "token": None}, CloseCode.UNAUTHORIZED),
        ({"type": "hello", "protocol": 9, "token": "ta"}, CloseCode.UNSUPPORTED_PROTOCOL),
        ({"type": "ping", "t": 1}, CloseCode.BAD_MESSAGE),
        ("not json", CloseCode.BAD_MESSAGE),
        ({"type": "hello", "protocol": 1, "token": 5}, CloseCode.BAD_MESSAGE),
    ],
)
def test_a_bad_first_message_closes_with_its_code(first, code):
    async def scenario(url, realtime, seam):
        ws = await connect(url)
        await ws.send(first if isinstance(first, str) else json.dumps(first))
        assert await closed_with(ws) == code
        assert realtime.open_sockets == 0

    run(scenario)


def test_no_hello_in_time_is_4003():
    async def scenario(url, realtime, seam):
        ws = await connect(url)
        assert await closed_with(ws) == CloseCode.HELLO_TIMEOUT

    run(scenario, hello_timeout_s=0.2)


def test_a_token_that_expires_mid_connection_closes_with_4002_at_the_next_ping():
    async def scenario(url, realtime, seam):
        ws = await hello(url, "ta")
        await ws.recv()
        await ws.send(json.dumps({"type": "ping", "t": 1}))
        assert json.loads(await ws.recv())["type"] == "pong"
        del seam.tokens["ta"]  # expired (or revoked)
        await ws.send(json.dumps({"type": "ping", "t": 2}))
        assert await closed_with(ws) == CloseCode.TOKEN_EXPIRED

    run(scenario)


def test_a_silent_client_is_dropped_with_4004():
    async def scenario(url, realtime, seam):
        ws = await hello(url, "ta")
        await ws.recv()
        assert await closed_with(ws) == CloseCode.HEARTBEAT_TIMEOUT
        for _ in range(100):  # the server's handler finishes just after the client saw the close
            if realtime.open_sockets == 0:
                break
            await asyncio.sleep(0.01)
        assert realtime.open_sockets == 0

    run(scenario, heartbeat_ms=100)


def test_the_in_process_notifier_pokes_from_another_thread():
    async def scenario(url, realtime, seam):
        notifier = Notifier()
        unsubscribe = follow_notifier(notifier, realtime)
        ws = await hello(url, "tb")
        await ws.recv()
        threading.Thread(target=notifier.publish, args=("tenant-b", "4")).start()
        poke = json.loads(await ws.recv())
        assert poke["type"] == "poke" and poke["cursor"] == "4"
        unsubscribe()
        await ws.close()

    run(scenario)


def test_the_head_poller_pokes_when_a_tenants_head_moves_past_what_its_sockets_were_told():
    from redux_idb_sync_server.realtime.fanout import poll_heads

    async def scenario(url, realtime, seam):
        stop = asyncio.Event()
        poller = asyncio.ensure_future(poll_heads(seam, realtime, stop, 0.02))
        ws = await hello(url, "ta")
        assert json.loads(await ws.recv())["cursor"] == "7"
        seam.heads["tenant-a"] = "9"  # another process committed a write
        poke = json.loads(await ws.recv())
        assert poke["type"] == "poke" and poke["cursor"] == "9"
        stop.set()
        await poller
        await ws.close()

    run(scenario)


def test_a_seam_without_changes_page_offers_no_pull_and_a_pull_is_then_a_bad_message():
    async def scenario(url, realtime, seam):
        ws = await hello(url, "ta")
        assert json.loads(await ws.recv())["features"] == []
        await ws.send(json.dumps({"type": "pull", "id": "1", "since": "0"}))
        assert await closed_with(ws) == CloseCode.BAD_MESSAGE

    run(scenario)
