"""A faster way into the HAR reader, for when the original JSON is not needed.

``json.loads`` builds every object of a HAR: stack traces in ``_initiator``, cookies,
query strings, response bodies, timings nobody reads. With msgspec installed, only the
fields the engine reads are decoded (several times faster on real exports), into the
same shapes ``json.loads`` gives, and each entry then goes through the one HAR reader,
:func:`cors_addon.sources.har._entry_to_exchange`, so both paths give the same
exchanges, warnings and errors. Header lists arrive already converted to
:class:`~cors_addon.headers.Headers`.

Anything outside the common shape (a header value that is not a string, an entry that
is not an object, invalid UTF-8, a lone ``\\ud800`` escape, ``NaN``, a number out of
range…) makes :func:`read_har_fast` return ``None``: the caller then uses the
tolerant reader on ``json.loads`` output, which explains such oddities. The annotated
HAR always uses that path too, since it must keep every field.
"""

from __future__ import annotations

import re
import sys
from typing import Any, NotRequired, TypedDict

from cors_addon.headers import Headers

try:
    import msgspec
except ImportError:  # pragma: no cover - msgspec is a dependency, but stay usable without it
    msgspec = None


def available() -> bool:
    return msgspec is not None


if msgspec is not None:

    class _Header(msgspec.Struct, gc=False):
        name: str
        value: str

    _Initiator = TypedDict("_Initiator", {"type": NotRequired[Any]})
    _Request = TypedDict("_Request", {
        "method": NotRequired[Any], "url": NotRequired[Any], "headers": NotRequired[list[_Header]],
        "httpVersion": NotRequired[Any],
    })
    _Response = TypedDict("_Response", {
        "status": NotRequired[Any], "headers": NotRequired[list[_Header]], "_error": NotRequired[Any],
    })
    _Entry = TypedDict("_Entry", {
        "request": _Request, "response": NotRequired[_Response | None], "startedDateTime": NotRequired[Any],
        "time": NotRequired[Any], "timings": NotRequired[dict[str, Any] | None], "pageref": NotRequired[Any],
        "_resourceType": NotRequired[Any], "_initiator": NotRequired[_Initiator | None],
        "_fromCache": NotRequired[Any],
    })
    _Log = TypedDict("_Log", {
        "entries": list[_Entry], "pages": NotRequired[Any], "creator": NotRequired[Any],
    })
    _Har = TypedDict("_Har", {"log": _Log})
    _DECODER = msgspec.json.Decoder(_Har)


_DIGIT = re.compile(rb"[0-9]")


def _may_hold_huge_integer(raw: bytes) -> bool:
    """Whether ``raw`` may hold a number longer than Python's int conversion limit,
    which ``json.loads`` refuses (the tolerant path then says so) and msgspec skips.
    Any run of more than ``limit`` digits covers a whole aligned block of ``limit // 2``
    bytes, so only blocks that start with a digit are looked at: a few milliseconds
    on hundreds of megabytes."""
    limit = sys.get_int_max_str_digits()
    if not limit:
        return False
    block = limit // 2
    for m in _DIGIT.finditer(raw[::block]):
        start = m.start() * block
        if raw[start:start + block].isdigit():
            return True
    return False


def _headers(items: list) -> Headers:
    return Headers.from_str_pairs([(h.name, h.value) for h in items])


def decode(raw: bytes) -> dict | None:
    """The HAR's slim form: ``{"log": {"entries": [...], "pages": ..., "creator": ...}}``
    with headers as :class:`Headers`, or ``None`` when the file needs the tolerant path."""
    if msgspec is None or _may_hold_huge_integer(raw):
        return None
    try:
        data = _DECODER.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, ValueError):
        return None
    for entry in data["log"]["entries"]:
        request = entry["request"]
        if "headers" in request:
            request["headers"] = _headers(request["headers"])
        response = entry.get("response")
        if response and "headers" in response:
            response["headers"] = _headers(response["headers"])
    return data
