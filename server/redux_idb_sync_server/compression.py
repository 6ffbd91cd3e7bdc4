"""Request decompression with a bound on the decompressed size, and response compression
(docs/protocol.md, "Compression"). Pure: no Flask; the routes call it.

Rules it keeps:
- A gzip body is inflated at most ``limit + 1`` bytes at a time and never further, so a small
  body that inflates to gigabytes (a zip bomb) costs ``limit`` bytes of memory and is refused as
  too large, never held in memory.
- Only ``gzip`` (and its alias ``x-gzip``) and ``identity`` are understood; any other
  Content-Encoding is refused (415 with ``Accept-Encoding: gzip``, RFC 7694) rather than parsed
  as JSON.
- A response is compressed only when the request accepts gzip (``Accept-Encoding``, q > 0) and
  the body is large enough for it to pay.
"""

import gzip
import zlib

__all__ = ["BodyTooLarge", "CorruptBody", "UnsupportedEncoding", "accepts_gzip", "compress", "decode_body", "DEFAULT_MIN_RESPONSE_BYTES"]

# Below this, gzip's header and the CPU cost more than they save.
DEFAULT_MIN_RESPONSE_BYTES = 1024


class BodyTooLarge(ValueError):
    """The body, once decompressed, is larger than the limit."""


class UnsupportedEncoding(ValueError):
    """A Content-Encoding other than gzip or identity."""


class CorruptBody(ValueError):
    """A body that says gzip but is not one complete gzip stream."""


def decode_body(data, content_encoding, limit):
    """``data`` as sent, decoded per ``content_encoding`` (the header's value or None); raises
    BodyTooLarge when the decoded body exceeds ``limit`` bytes."""
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("", "identity"):
        if len(data) > limit:
            raise BodyTooLarge(limit)
        return data
    if encoding not in ("gzip", "x-gzip"):
        raise UnsupportedEncoding(encoding)
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as error:
        raise CorruptBody(str(error)) from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise BodyTooLarge(limit)
    if not inflater.eof:
        raise CorruptBody("the gzip stream is truncated")
    if inflater.unused_data:
        raise CorruptBody("data after the end of the gzip stream")
    return out


def accepts_gzip(accept_encoding):
    """Whether an Accept-Encoding header allows gzip (``gzip``, ``x-gzip`` or ``*`` with q > 0)."""
    if not accept_encoding:
        return False
    allowed = {}
    for part in accept_encoding.split(","):
        name, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        allowed[name.strip().lower()] = q
    for name in ("gzip", "x-gzip"):
        if name in allowed:
            return allowed[name] > 0
    return allowed.get("*", 0) > 0


def compress(body, accept_encoding, min_bytes=DEFAULT_MIN_RESPONSE_BYTES):
    """``(bytes, encoding)``: ``body`` gzip-compressed with encoding "gzip" when the client accepts
    it and it is at least ``min_bytes`` long, else unchanged with encoding None."""
    if len(body) < min_bytes or not accepts_gzip(accept_encoding):
        return body, None
    # Level 6 is zlib's default: most of level 9's ratio at a fraction of its CPU.
    return gzip.compress(body, compresslevel=6, mtime=0), "gzip"
