"""The messages between the addon and its helper process, and how they travel.

A flow crosses as mitmproxy's raw fields (bytes, numbers, tuples), packed with
``marshal``: taking them off the flow and packing them costs the proxy a few
microseconds, against about a hundred for the analysis itself. Each message is
packed the moment it is sent (:func:`encode`), so the proxy holds bytes, not the
tuples they came from, until its batch goes: a batch of live tuples survived the
proxy's young garbage collections and made them a quarter slower. Messages go in
batches, each a frame: four bytes of length, then the marshalled list of packed
messages. Both ends run the same interpreter, which is all ``marshal`` asks.

Each message is a named type; on the wire it is its fields behind its ``kind``
(``marshal`` writes plain tuples only). Frames are numbered by their order: a
:class:`Checkpoint` names the frames whose effect the helper has saved, which is how
the proxy knows what it may forget (:mod:`cors_addon.live_helper`).
"""

from __future__ import annotations

import marshal
import struct
from typing import NamedTuple

MAX_LIVE_FLOWS = 10_000
"""Flows between their request and response hooks, and blocked results already
logged, that either end remembers; older ones are dropped from these indexes, never
from the analysis."""
CHECKPOINT_BYTES = 8 << 20
"""Input the helper takes in between two checkpoints, at least; more once its state
is larger (at least twice its last checkpoint), so saving costs a bounded share of
the analysis however long the session: about 20 ms for the state of a session
without a per-flow report, against 0.3 s of analysis for 8 MiB of flows."""


# -- to the helper ---------------------------------------------------------------

class Configure(NamedTuple):
    """Start a fresh session (the options of a report changed)."""

    browser: str
    keep_flows: bool
    keep_exchanges: bool
    show_secrets: bool
    checkpoint_bytes: int
    """Input to take, at least, between two checkpoints."""
    kind = 0


class Begin(NamedTuple):
    """A flow's ``request`` hook: its request as :func:`request_fields` reads it."""

    flow_id: str
    request: tuple
    kind = 1


class Complete(NamedTuple):
    """A flow's ``response`` or ``error`` hook. ``request`` is None when it is what
    the flow's :class:`Begin` carried."""

    flow_id: str
    request: tuple | None
    response: tuple | None
    error: tuple | None
    kind = 2


class Gone(NamedTuple):
    """Flows the proxy no longer holds: the helper keeps their verdicts, but for the
    BLOCKED lines, since nothing would show them."""

    flow_ids: list
    kind = 3


class Sync(NamedTuple):
    """Answer :class:`Synced` once everything before this is done."""

    token: int
    kind = 4


class Finish(NamedTuple):
    """The proxy is exiting: write the report and answer :class:`Finished`."""

    report_path: str
    fmt: str
    want_report: bool
    kind = 5


# -- from the helper ---------------------------------------------------------------

class Hello(NamedTuple):
    pid: int
    kind = 10


class Verdict(NamedTuple):
    """An :class:`~cors_addon.live.Annotation`, its metadata packed once more so that
    the proxy unpacks only the verdicts of flows it still holds (mitmdump has dropped
    most of them by then); None when only the BLOCKED line is to be shown."""

    flow_id: str
    metadata: bytes | None
    marked: str
    comment: str
    log_line: str | None
    final: bool
    kind = 11


class Failure(NamedTuple):
    """One flow's analysis raised (the traceback only the first time)."""

    url: str
    trace: str | None
    kind = 12


class Synced(NamedTuple):
    token: int
    kind = 13


class Finished(NamedTuple):
    summary: dict
    log_lines: list
    report: bytes | None
    """The pickled report, when the proxy asked for it (an annotated HAR of its flows)."""
    kind = 14


class Forget(NamedTuple):
    """Flows whose analysis is over with nothing to show."""

    flow_ids: list
    kind = 15


class Checkpoint(NamedTuple):
    """The helper's whole state after the first ``frames`` frames is saved in its
    checkpoint file: the proxy may forget those frames."""

    frames: int
    size: int
    kind = 16


MESSAGE_TYPES = (Configure, Begin, Complete, Gone, Sync, Finish,
                 Hello, Verdict, Failure, Synced, Finished, Forget, Checkpoint)
_BY_KIND = {t.kind: t for t in MESSAGE_TYPES}
assert len(_BY_KIND) == len(MESSAGE_TYPES)


def request_fields(f) -> tuple:
    d = f.request.data
    return (d.host, d.port, d.method, d.scheme, d.authority, d.path, d.http_version, d.headers.fields,
            d.timestamp_start, d.timestamp_end)


def complete_event(f, begun: tuple | None = None) -> Complete:
    """The response and the error, with the request again only when it is not
    ``begun`` (what the :class:`Begin` carried): an addon changed it since the
    ``request`` hook, or that hook never ran."""
    request = request_fields(f)
    r = f.response
    response = None
    if r is not None:
        d = r.data
        response = (d.http_version, d.status_code, d.reason, d.headers.fields, d.timestamp_start, d.timestamp_end)
    error = (f.error.msg, f.error.timestamp) if f.error is not None else None
    return Complete(f.id, None if request == begun else request, response, error)


MARSHAL_VERSION = 2
"""The fastest to write here (versions 3 and 4 look up every object they write, to
share repeats)."""
_LENGTH = struct.Struct("<I")
HEADER_SIZE = _LENGTH.size


def encode(message: NamedTuple) -> bytes:
    """Raises ValueError for a value marshal cannot write (an addon may have put one
    on a flow)."""
    return marshal.dumps((message.kind, *message), MARSHAL_VERSION)


def decode(data: bytes):
    fields = marshal.loads(data)
    return _BY_KIND[fields[0]](*fields[1:])


def pack(value) -> bytes:
    """A verdict's metadata, packed for :class:`Verdict`."""
    return marshal.dumps(value, MARSHAL_VERSION)


def unpack(data: bytes):
    return marshal.loads(data)


def frame(encoded: list[bytes]) -> bytes:
    payload = marshal.dumps(encoded, MARSHAL_VERSION)
    return _LENGTH.pack(len(payload)) + payload


def frame_messages(data: bytes) -> list:
    """The messages of one whole frame."""
    return [decode(m) for m in marshal.loads(data[HEADER_SIZE:])]


def split_frames(buffer: bytearray) -> list[bytes]:
    """Every whole frame at the start of ``buffer``, which loses them."""
    out: list[bytes] = []
    start = 0
    while len(buffer) - start >= HEADER_SIZE:
        (size,) = _LENGTH.unpack_from(buffer, start)
        end = start + HEADER_SIZE + size
        if len(buffer) < end:
            break
        out.append(bytes(buffer[start:end]))
        start = end
    del buffer[:start]
    return out


def frames(buffer: bytearray) -> list:
    """The messages of every whole frame at the start of ``buffer``, which loses them."""
    return [message for data in split_frames(buffer) for message in frame_messages(data)]
