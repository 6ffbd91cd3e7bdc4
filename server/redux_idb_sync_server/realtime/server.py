"""The socket server: ``hello`` -> ``ready``, ``poke`` fan-out, ``pull`` -> ``changes``, heartbeats, close codes."""

import asyncio
import json
import logging
import time

from websockets.asyncio.server import broadcast, serve
from websockets.exceptions import ConnectionClosed

from ..errors import ApiError, dumps
from ..validation import bad_string, parse_changes_body

log = logging.getLogger("redux_idb_sync_server.realtime")

PROTOCOL = 1
MAX_MESSAGE = 16 * 1024  # inbound frames; outbound ``changes`` frames may be larger
MAX_PULL_ID = 64
#: What ``ready`` lists in ``features`` when the seam can answer pulls.
PULL = "pull"
#: The name socket pulls are counted under in ``/_test/stats`` (HTTP pulls: ``changes``).
SOCKET_CHANGES = "socket_changes"


class CloseCode:
    """The close codes of docs/protocol.md; the client acts on each as documented there."""

    NORMAL = 1000
    GOING_AWAY = 1001
    INTERNAL_ERROR = 1011
    TRY_AGAIN_LATER = 1013
    BAD_MESSAGE = 4000
    UNAUTHORIZED = 4001
    TOKEN_EXPIRED = 4002
    HELLO_TIMEOUT = 4003
    HEARTBEAT_TIMEOUT = 4004
    UNSUPPORTED_PROTOCOL = 4005


CLOSE_REASONS = {
    4000: "bad_message",
    4001: "unauthorized",
    4002: "token_expired",
    4003: "hello_timeout",
    4004: "heartbeat_timeout",
    4005: "unsupported_protocol",
}


def now_ms():
    return int(time.time() * 1000)


class _Closing(Exception):
    def __init__(self, code):
        super().__init__(CLOSE_REASONS.get(code, ""))
        self.code = code


class RealtimeServer:
    """One socket process (or thread). ``seam`` is the API extension, or anything with
    ``tenant_for_token(token) -> tenant | None`` and ``feed_head(tenant) -> str``, and for pulls
    ``changes_page(tenant, since, limit, collections) -> dict`` (raising ``ApiError``) and
    optionally ``count_request(tenant, name)``; all are blocking (database) calls and run in a
    worker thread. Without ``changes_page`` the server does not offer pulls (no ``"pull"`` in
    ``ready``'s ``features``).

    Rules it keeps:
    - The token arrives in the first message (``hello``), never in the URL (URLs end up in logs).
    - A socket is only ever poked for its own tenant's feed.
    - The token is checked again at every client ping; once it no longer maps to the same tenant
      (expired, revoked) the socket is closed with 4002 and the client refreshes it.
    - Nothing heard for two heartbeat intervals: the client is gone (4004).
    - A ``pull`` is answered with what ``POST /sync/changes`` would answer the socket's tenant
      (``changes``, or ``pullFailed`` with the route's status and error), after the same token
      check as a ping. A socket's messages are handled one at a time, so its pulls are answered
      in the order asked; a failed pull never closes the socket.
    """

    def __init__(self, seam, heartbeat_ms=15000, hello_timeout_s=10.0):
        self.seam = seam
        self.heartbeat_ms = heartbeat_ms
        self.hello_timeout_s = hello_timeout_s
        self._by_tenant = {}
        self._announced = {}
        self._loop = None
        self._server = None
        self.pokes_sent = 0
        self.features = [PULL] if callable(getattr(seam, "changes_page", None)) else []

    # ------------------------------------------------------------------ fan-out

    def publish(self, tenant, cursor=None, at=None):
        """Pokes every socket of ``tenant``. Call it on the server's event loop (see ``publish_threadsafe``)."""
        sockets = self._by_tenant.get(tenant)
        if not sockets:
            return
        if cursor is None:
            # The commit-ordered cursor was not known where the write happened: ask the feed.
            asyncio.ensure_future(self._publish_with_head(tenant, at))
            return
        self._announced[tenant] = str(cursor)
        message = json.dumps({"type": "poke", "cursor": str(cursor), "at": at if at is not None else now_ms()})
        self.pokes_sent += len(sockets)
        broadcast(list(sockets), message)

    async def _publish_with_head(self, tenant, at):
        try:
            head = await asyncio.to_thread(self.seam.feed_head, tenant)
        except Exception:  # noqa: BLE001 - a failed read must not stop the fan-out
            log.exception("feed_head failed; poking without a cursor")
            head = ""
        self.publish(tenant, head, at)

    def publish_threadsafe(self, tenant, cursor=None, at=None):
        """For notifiers that call back on another thread (the embedded Flask server's)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.publish, tenant, cursor, at if at is not None else now_ms())

    def poke_everyone(self):
        """After a gap in the fan-out source (a lost LISTEN connection): notifications may be lost, so every tenant pulls."""
        for tenant in list(self._by_tenant):
            self.publish(tenant, None, now_ms())

    def announced(self, tenant):
        """The last head this server told ``tenant``'s sockets (in ``ready`` or a poke), or None."""
        return self._announced.get(tenant)

    def tenants(self):
        """The tenants that have open sockets now."""
        return list(self._by_tenant)

    @property
    def open_sockets(self):
        return sum(len(s) for s in self._by_tenant.values())

    # ------------------------------------------------------------------ sockets

    async def handler(self, websocket):
        tenant = None
        try:
            tenant, token = await self._hello(websocket)
            # Registered before the head is read: a write committed meanwhile is either below the
            # head (the client's catch-up pull gets it) or poked.
            self._by_tenant.setdefault(tenant, set()).add(websocket)
            head = str(await asyncio.to_thread(self.seam.feed_head, tenant))
            self._announced.setdefault(tenant, head)
            ready = {"type": "ready", "protocol": PROTOCOL, "cursor": str(head), "heartbeatMs": self.heartbeat_ms, "serverTime": now_ms(), "features": list(self.features)}
            await websocket.send(json.dumps(ready))
            await self._follow(websocket, tenant, token)
        except _Closing as closing:
            await websocket.close(closing.code, CLOSE_REASONS.get(closing.code, ""))
        except ConnectionClosed:
            pass
        except Exception:  # noqa: BLE001 - one broken socket never takes the process down
            log.exception("real-time socket failed")
            await websocket.close(CloseCode.INTERNAL_ERROR, "internal_error")
        finally:
            if tenant is not None:
                sockets = self._by_tenant.get(tenant)
                if sockets is not None:
                    sockets.discard(websocket)
                    if not sockets:
                        del self._by_tenant[tenant]
                        self._announced.pop(tenant, None)

    async def _hello(self, websocket):
        try:
            raw = await asyncio.wait_for(websocket.recv(), timeout=self.hello_timeout_s)
        except asyncio.TimeoutError:
            raise _Closing(CloseCode.HELLO_TIMEOUT) from None
        message = _parse(raw)
        if message is None or message.get("type") != "hello":
            raise _Closing(CloseCode.BAD_MESSAGE)
        if message.get("protocol") != PROTOCOL:
            raise _Closing(CloseCode.UNSUPPORTED_PROTOCOL)
        token = message.get("token")
        if token is not None and not isinstance(token, str):
            raise _Closing(CloseCode.BAD_MESSAGE)
        tenant = await asyncio.to_thread(self._tenant, token)
        if tenant is None:
            raise _Closing(CloseCode.UNAUTHORIZED)
        return tenant, token

    def _tenant(self, token):
        # An API without tokens is open, and all of it is tenant "default" (as for its requests).
        if getattr(self.seam, "auth_required", True) is False:
            return "default"
        return self.seam.tenant_for_token(token) if isinstance(token, str) else None

    async def _follow(self, websocket, tenant, token):
        timeout = 2 * self.heartbeat_ms / 1000 + 1
        while True:
            try:
                raw = await asyncio.wait_for(websocket.recv(), timeout=timeout)
            except asyncio.TimeoutError:
                raise _Closing(CloseCode.HEARTBEAT_TIMEOUT) from None
            message = _parse(raw)
            kind = message.get("type") if message is not None else None
            if kind == "pull" and PULL in self.features:
                # Handled before the next message is read: pulls are answered in the order asked.
                await self._answer_pull(websocket, tenant, token, message)
                continue
            if kind not in ("ping", "pong"):
                raise _Closing(CloseCode.BAD_MESSAGE)
            if kind == "ping":
                # The token may have expired or been revoked since hello.
                if await asyncio.to_thread(self._tenant, token) != tenant:
                    raise _Closing(CloseCode.TOKEN_EXPIRED)
                t = message.get("t")
                await websocket.send(json.dumps({"type": "pong", "t": t if isinstance(t, (int, float)) and not isinstance(t, bool) else 0}))

    async def _answer_pull(self, websocket, tenant, token, message):
        pull_id = message.get("id")
        if bad_string(pull_id, "id", MAX_PULL_ID):
            raise _Closing(CloseCode.BAD_MESSAGE)
        answer = await asyncio.to_thread(self._pull, tenant, token, pull_id, message)
        if answer is None:
            raise _Closing(CloseCode.TOKEN_EXPIRED)
        await websocket.send(answer)

    def _pull(self, tenant, token, pull_id, message):
        """In a worker thread: the ``changes`` or ``pullFailed`` frame for ``message`` (already
        serialised), or None when the socket's token no longer maps to its tenant."""
        try:
            # The token may have expired or been revoked since hello (as at a ping).
            if self._tenant(token) != tenant:
                return None
            count = getattr(self.seam, "count_request", None)
            if count is not None:
                count(tenant, SOCKET_CHANGES)
            # The parameters are the body of POST /sync/changes ("type" and "id" are ignored there).
            since, limit, collections = parse_changes_body(message)
            answer = {"type": "changes", "id": pull_id, **self.seam.changes_page(tenant, since, limit, collections)}
        except ApiError as error:
            answer = {"type": "pullFailed", "id": pull_id, "status": error.status, "error": error.code, "message": error.message, **error.extra}
        except Exception:  # noqa: BLE001 - as the route: logged, answered 500, and the socket stays
            log.exception("socket pull failed")
            answer = {"type": "pullFailed", "id": pull_id, "status": 500, "error": "internal", "message": "internal server error"}
        # As the route's answers: compact, and nothing that is not JSON.
        return dumps(answer)

    # ------------------------------------------------------------------ lifecycle

    async def start(self, host="127.0.0.1", port=0):
        self._loop = asyncio.get_running_loop()
        # The library's own protocol pings (every 20 s) also catch half-open TCP connections.
        self._server = await serve(self.handler, host, port, max_size=MAX_MESSAGE)
        return self._server.sockets[0].getsockname()[1]

    async def close(self):
        if self._server is not None:
            self._server.close(close_connections=True)
            await self._server.wait_closed()


def _parse(raw):
    if not isinstance(raw, str):
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
