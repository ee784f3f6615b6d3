"""A faster way into the HAR reader, for when the original JSON is not needed.

``json.loads`` builds every object of a HAR: stack traces in ``_initiator``, cookies,
query strings, response bodies, timings nobody reads. With msgspec installed, only the
fields the engine reads are decoded, into typed structs whose types msgspec checks in
C, so each entry becomes an :class:`~cors_addon.exchange.Exchange` without the
tolerant reader's per-field checks (several times faster on a big HAR).

This path only reads HARs of the common shape, where it gives exactly what the
tolerant reader (:func:`cors_addon.sources.har.read_har_data`) gives; anything else
makes :func:`read_har_fast` return ``None`` and the caller uses the tolerant reader,
which explains such oddities: a field of another type (a status written as a string, a
header value that is not a string), an entry that is not an object or has no method,
url or readable date, invalid UTF-8, a lone ``\\ud800`` escape, ``NaN``, a number out
of range… ``tests/test_bench_smoke.py`` holds the two readers to the same exchanges,
warnings and pages on every recording in the repository and on the bad-input corpus.
The annotated HAR always uses the tolerant path, since it must keep every field.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from cors_addon.exchange import Exchange
from cors_addon.headers import Headers
from cors_addon.sources.har import (
    HarRecording,
    _blocked_ms,
    _duration_ms,
    _pages,
    _Problems,
    _status,
    _text,
    parse_time,
)

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

    class _Request(msgspec.Struct, gc=False):
        method: str
        url: str
        headers: list[_Header] = []
        httpVersion: Any = None

    class _Response(msgspec.Struct, gc=False):
        status: Any = None
        headers: list[_Header] = []
        error: Any = msgspec.field(default=None, name="_error")

    class _Initiator(msgspec.Struct, gc=False):
        type: Any = None

    class _Entry(msgspec.Struct, gc=False):
        request: _Request
        startedDateTime: str
        response: _Response | None = None
        time: Any = None
        timings: dict[str, Any] | None = None
        pageref: Any = None
        resource_type: Any = msgspec.field(default=None, name="_resourceType")
        initiator: _Initiator | None = msgspec.field(default=None, name="_initiator")
        from_cache: Any = msgspec.field(default=None, name="_fromCache")

    class _Log(msgspec.Struct, gc=False):
        entries: list[_Entry]
        pages: Any = None
        creator: Any = None

    class _Har(msgspec.Struct, gc=False):
        log: _Log

    _DECODER = msgspec.json.Decoder(_Har)


_DIGIT = re.compile(rb"[0-9]")
_NO_TIMINGS: dict = {}


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


def _url_may_not_parse(url: str) -> bool:
    """``urllib.parse.urlsplit`` raises only for brackets (IPv6 literals) and for
    non-ASCII hosts that normalise into URL delimiters: a plain ASCII URL without
    brackets cannot fail, so only the others are tried."""
    return not url.isascii() or "[" in url or "]" in url


def read_har_fast(path: str, raw: bytes) -> HarRecording | None:
    """The recording, or ``None`` when the file needs the tolerant reader."""
    if msgspec is None or _may_hold_huge_integer(raw):
        return None
    try:
        log = _DECODER.decode(raw).log
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, ValueError):
        return None
    exchanges = _exchanges(log.entries)
    if exchanges is None:
        return None
    problems = _Problems()
    if not exchanges:
        problems.file("the HAR has no entries: nothing to audit")
    pages = _pages({"pages": log.pages}, problems)
    creator = log.creator if isinstance(log.creator, dict) else {}
    name, version = _text(creator.get("name", "?")), _text(creator.get("version", ""))
    return HarRecording(path=path, data=None, exchanges=exchanges, pages=pages,
                        creator=f"{name} {version}".strip(), skipped=problems.lines())


def _exchanges(entries: list) -> list[Exchange] | None:
    """Each entry as ``_entry_to_exchange`` in ``sources/har.py`` reads it, for the
    entries where that reader would have nothing to say; ``None`` at the first entry
    it would warn about or skip."""
    out = []
    append = out.append
    from_named = Headers.from_named
    for index, e in enumerate(entries):
        rq = e.request
        method, url = rq.method, rq.url
        if not method or not url or _url_may_not_parse(url):
            return None
        started = parse_time(e.startedDateTime)
        if started is None:
            return None
        rs = e.response
        if rs is not None:
            status = rs.status
            if status is None:
                status = 0
            elif type(status) is not int or not 0 <= status < 1000:
                status = _status(status)
                if status is None:
                    return None
            error = rs.error
            if error is not None and error != "":
                error = error if type(error) is str else _text(error)
            else:
                error = None
            response_headers = from_named(rs.headers)
        else:
            status, error, response_headers = 0, None, Headers()
        timings = e.timings if e.timings is not None else _NO_TIMINGS
        time = e.time
        if type(time) is float and time >= 0:
            duration = time
        else:
            duration = _duration_ms({"time": time}, timings)
        request_headers = from_named(rq.headers)
        if method.upper() == method:
            for h in rq.headers:
                if h.name[:1] == ":" and h.name.lower() == ":method":
                    method = h.value or method
                    break
        pageref = e.pageref
        if pageref is not None and (type(pageref) is not str):
            pageref = _text(pageref) if isinstance(pageref, int) and not isinstance(pageref, bool) else None
        resource_type = e.resource_type
        initiator = e.initiator
        initiator_type = initiator.type if initiator is not None else None
        http_version = rq.httpVersion
        append(Exchange(
            id=f"e{index}",
            method=method,
            url=url,
            request_headers=request_headers,
            status=status,
            response_headers=response_headers,
            error=error,
            started=started,
            wire_start=started + _blocked_ms(timings) / 1000,
            ended=started + duration / 1000,
            duration_ms=duration,
            pageref=pageref,
            resource_type=resource_type if type(resource_type) is str else None,
            initiator_type=initiator_type if type(initiator_type) is str else None,
            http_version=(http_version if type(http_version) is str else _text(http_version))
            if http_version is not None else "",
            source_index=index,
            from_cache=bool(e.from_cache),
        ))
    return out
