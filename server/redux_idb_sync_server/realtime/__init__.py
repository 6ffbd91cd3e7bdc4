"""The real-time channel of docs/protocol.md ("Real-time channel"): a WebSocket server that tells
subscribed clients that their tenant's change feed advanced. A poke carries no data, only the
new cursor; clients pull incrementally, so a lost message loses nothing. A client may send that
pull on the socket (``pull``): it is answered as ``POST /sync/changes`` answers it.

It is stateless apart from its open sockets: who may connect is asked of the API's extension
(``tenant_for_token``), the feed head too (``feed_head``), pull pages too (``changes_page``,
the function the HTTP route answers with), and which tenant's feed advanced comes
from a fan-out source: PostgreSQL ``LISTEN`` (every API worker's commits, see ``fanout.py``) or
the in-process notifier of the embedded SQLite server.

Requires the optional ``websockets`` package; the plain REST server never imports this package.
"""

from .server import CLOSE_REASONS, PROTOCOL, CloseCode, RealtimeServer

__all__ = ["RealtimeServer", "CloseCode", "CLOSE_REASONS", "PROTOCOL"]
