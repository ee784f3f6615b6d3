"""What the addon sends its helper process, and how: the wire between
:mod:`cors_addon.addon` and :mod:`cors_addon.live_worker`.

A flow crosses as mitmproxy's raw fields (bytes, numbers, tuples), packed with
``marshal``: taking them off the flow and packing them costs the proxy a few
microseconds, against about a hundred for the analysis itself. Each message is
packed the moment it is sent (:func:`encode`), so the proxy holds bytes, not the
tuples they came from, until its batch goes: a batch of live tuples survived the
proxy's young garbage collections and made them a quarter slower. Messages go in
batches, each a frame: four bytes of length, then the marshalled list of packed
messages. Both ends run the same interpreter, which is all ``marshal`` asks.

To the helper: ``BEGIN`` and ``COMPLETE`` events, ``CONFIGURE`` (a fresh session),
``SYNC`` (answer when everything before it is done), ``GONE`` (flows the proxy has
dropped since the last batch: the helper keeps their verdicts, but for the BLOCKED
lines, since nothing would show them) and ``FINISH``. From it:
``ANNOTATION`` (its verdict packed once more, so that the proxy unpacks only the
verdicts of flows it still holds: mitmdump has dropped most of them by then),
``FORGET`` (flows whose analysis is over with nothing to show),
``FAILURE`` (one flow's analysis raised), ``SYNCED``, ``FINISHED``.
"""

from __future__ import annotations

import marshal
import struct

BEGIN, COMPLETE, CONFIGURE, SYNC, FINISH, GONE = 0, 1, 2, 3, 4, 5
HELLO, ANNOTATION, FAILURE, SYNCED, FINISHED, FORGET = 10, 11, 12, 13, 14, 15
MAX_LIVE_FLOWS = 10_000
"""Flows between their request and response hooks, and blocked results already
logged, that either end remembers; older ones are dropped from these indexes, never
from the analysis."""
_LENGTH = struct.Struct("<I")
HEADER_SIZE = _LENGTH.size


def request_fields(f) -> tuple:
    d = f.request.data
    return (d.host, d.port, d.method, d.scheme, d.authority, d.path, d.http_version, d.headers.fields,
            d.timestamp_start, d.timestamp_end)


def complete_event(f, begun: tuple | None = None) -> tuple:
    """The response and the error, with the request again only when it is not
    ``begun`` (what the ``BEGIN`` event carried): an addon changed it since the
    ``request`` hook, or that hook never ran."""
    request = request_fields(f)
    r = f.response
    response = None
    if r is not None:
        d = r.data
        response = (d.http_version, d.status_code, d.reason, d.headers.fields, d.timestamp_start, d.timestamp_end)
    error = (f.error.msg, f.error.timestamp) if f.error is not None else None
    return (COMPLETE, f.id, None if request == begun else request, response, error)


MARSHAL_VERSION = 2
"""The fastest to write here (versions 3 and 4 look up every object they write, to
share repeats)."""


def encode(message: tuple) -> bytes:
    """Raises ValueError for a value marshal cannot write (an addon may have put one
    on a flow)."""
    return marshal.dumps(message, MARSHAL_VERSION)


def decode(data: bytes):
    return marshal.loads(data)


def frame(encoded: list[bytes]) -> bytes:
    payload = marshal.dumps(encoded, MARSHAL_VERSION)
    return _LENGTH.pack(len(payload)) + payload


def frames(buffer: bytearray) -> list:
    """The messages of every whole frame at the start of ``buffer``, which loses them."""
    out: list = []
    start = 0
    loads = marshal.loads
    while len(buffer) - start >= HEADER_SIZE:
        (size,) = _LENGTH.unpack_from(buffer, start)
        end = start + HEADER_SIZE + size
        if len(buffer) < end:
            break
        out.extend(map(loads, loads(bytes(buffer[start + HEADER_SIZE:end]))))
        start = end
    del buffer[:start]
    return out
