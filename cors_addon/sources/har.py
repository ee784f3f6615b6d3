"""HAR from Chrome, Firefox, mitmproxy and proxies, read defensively.

Every field except ``request.method``/``request.url``/``startedDateTime`` is optional
in practice: status 0 with ``_error`` for failures, ``-1`` and slightly negative
timings, ``content: {}``, pseudo-headers, a BOM (see
``shared/reference/har-formats.md``). An entry that cannot be read is reported and
skipped; the rest of the file still counts. A field of the wrong type is read as
absent and reported once per file, with the entries it affected.

Strings reach the engine as valid Unicode: lone surrogates (from ``\\ud800`` escapes
or from undecodable bytes, which the loader keeps for a byte-exact ``--annotate``)
become U+FFFD here, in the exchanges only, never in ``HarRecording.data``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from cors_addon.exchange import Exchange
from cors_addon.headers import Headers

MAX_LISTED_ENTRIES = 5
"""A warning names this many entries, then says how many more had the same problem."""

_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(slots=True)
class HarRecording:
    path: str
    data: dict
    exchanges: list[Exchange]
    pages: list[dict]
    creator: str
    skipped: list[str] = field(default_factory=list)
    """One line per problem: entries skipped, and fields read as absent."""


class _Problems:
    """Problems grouped by what went wrong, each with the entries it happened in."""

    def __init__(self) -> None:
        self._by_problem: dict[str, list[int]] = {}
        self._file: list[str] = []

    def entry(self, index: int, problem: str) -> None:
        self._by_problem.setdefault(problem, []).append(index)

    def file(self, problem: str) -> None:
        self._file.append(problem)

    def lines(self) -> list[str]:
        out = list(self._file)
        for problem, indexes in self._by_problem.items():
            if len(indexes) == 1:
                out.append(f"entry {indexes[0]}: {problem}")
                continue
            shown = ", ".join(str(i) for i in indexes[:MAX_LISTED_ENTRIES])
            more = len(indexes) - MAX_LISTED_ENTRIES
            out.append(f"entries {shown}{f' and {more} more' if more > 0 else ''}: {problem}")
        return out


def clean(value: str) -> str:
    """Valid Unicode for the engine and the writers: lone surrogates become U+FFFD."""
    return _SURROGATE.sub("\ufffd", value) if _SURROGATE.search(value) else value


def _text(value: Any) -> str:
    """A header name or value of any JSON type as the string a tool meant: numbers
    and booleans as JSON writes them (``600`` is ``"600"``), null as empty."""
    if value is None:
        return ""
    if isinstance(value, str):
        return clean(value)
    try:
        return clean(json.dumps(value, ensure_ascii=False))
    except (TypeError, ValueError, RecursionError):
        return clean(str(value))


def parse_time(value: Any) -> float | None:
    """``startedDateTime`` with any offset and 0-7 fractional digits (Fiddler writes 7)."""
    if not isinstance(value, str) or not value:
        return None
    try:  # the usual form, parsed in C (3.12 reads "Z" and 1-9 fractional digits alike)
        return datetime.fromisoformat(value).timestamp()
    except (ValueError, OverflowError, OSError):
        pass
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    if "." in text:
        head, _, rest = text.partition(".")
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = head + "." + rest[:min(digits, 6)].ljust(1, "0") + rest[digits:]
    try:
        stamp = datetime.fromisoformat(text).timestamp()
    except (ValueError, OverflowError, OSError):
        return None
    return stamp if math.isfinite(stamp) else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _status(value: Any) -> int | None:
    """The HTTP status, or None when the field is not a number; a numeric string is
    read as the number some exporters meant."""
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 4:
        value = int(value.strip())
    number = _number(value)
    if number is None:
        return None
    return int(number) if 0 <= number < 1000 else 0


def _blocked_ms(timings: dict) -> float:
    """Chrome starts ``blocked`` from the -1 sentinel and adds under a millisecond, so
    -0.6 means 0.4 ms; -1 means "not applicable"."""
    value = _number(timings.get("blocked"))
    if value is None or value <= -1:
        return 0.0
    return value + 1 if value < 0 else value


def _duration_ms(entry: dict, timings: dict) -> float:
    total = _number(entry.get("time"))
    if total is not None and total >= 0:
        return total
    parts = (_number(timings.get(k)) for k in ("blocked", "dns", "connect", "send", "wait", "receive"))
    return sum(p for p in parts if p is not None and p > 0)


def _headers(value: Any, where: str, problems: _Problems, index: int) -> Headers:
    pairs = []
    if isinstance(value, list):
        odd = False
        for h in value:
            if isinstance(h, dict) and "name" in h:
                pairs.append((_text(h.get("name")), _text(h.get("value"))))
            elif isinstance(h, (list, tuple)) and len(h) == 2:
                pairs.append((_text(h[0]), _text(h[1])))
            else:
                odd = True
        if odd:
            problems.entry(index, f"{where} has items that are not headers; they were ignored")
    elif isinstance(value, dict):
        pairs = [(_text(k), _text(v)) for k, v in value.items()]
    elif value is not None:
        problems.entry(index, f"{where} is not a list; read as no headers")
    return Headers(pairs)


def _entry_to_exchange(entry: Any, index: int, problems: _Problems) -> Exchange:
    if not isinstance(entry, dict):
        raise ValueError("entry is not an object")
    request = entry.get("request")
    if not isinstance(request, dict):
        raise ValueError("entry has no request object")
    method, url = request.get("method"), request.get("url")
    if not isinstance(method, str) or not method or not isinstance(url, str) or not url:
        raise ValueError("request has no method or url")
    method, url = clean(method), clean(url)
    try:
        urlsplit(url)
    except ValueError as exc:
        raise ValueError(f"request.url cannot be parsed ({exc})") from None
    started = parse_time(entry.get("startedDateTime"))
    if started is None:
        raise ValueError("startedDateTime is missing or not a date")
    response = entry.get("response")
    if response is not None and not isinstance(response, dict):
        problems.entry(index, "response is not an object; read as no response")
    response = response if isinstance(response, dict) else {}
    timings = entry.get("timings") if isinstance(entry.get("timings"), dict) else {}
    duration = _duration_ms(entry, timings)
    status = _status(response.get("status"))
    if status is None:
        if response.get("status") is not None:
            problems.entry(index, "response.status is not a number; read as no response")
        status = 0
    error = response.get("_error")
    initiator = entry.get("_initiator") if isinstance(entry.get("_initiator"), dict) else {}
    pageref = entry.get("pageref")
    request_headers = _headers(request.get("headers"), "request.headers", problems, index)
    if method.upper() == method and ":method" in request_headers:
        method = request_headers.get(":method") or method
    http_version = request.get("httpVersion")
    return Exchange(
        id=f"e{index}",
        method=method,
        url=url,
        request_headers=request_headers,
        status=status,
        response_headers=_headers(response.get("headers"), "response.headers", problems, index),
        error=_text(error) if error not in (None, "") else None,
        started=started,
        wire_start=started + _blocked_ms(timings) / 1000,
        ended=started + duration / 1000,
        duration_ms=duration,
        pageref=_text(pageref) if isinstance(pageref, (str, int)) and not isinstance(pageref, bool) else None,
        resource_type=clean(entry["_resourceType"]) if isinstance(entry.get("_resourceType"), str) else None,
        initiator_type=clean(initiator["type"]) if isinstance(initiator.get("type"), str) else None,
        http_version=_text(http_version) if http_version is not None else "",
        source_index=index,
        from_cache=bool(entry.get("_fromCache")),
    )


def entry_to_exchange(entry: Any, index: int) -> Exchange:
    """One HAR entry; ``ValueError`` says why it cannot be read."""
    return _entry_to_exchange(entry, index, _Problems())


def _pages(log: dict, problems: _Problems) -> list[dict]:
    """Declared page loads, as fresh objects holding clean strings (the recording's
    own ``pages`` stay untouched for annotation)."""
    value = log.get("pages")
    if value is None:
        return []
    if not isinstance(value, list):
        problems.file("log.pages is not a list; pages are inferred from navigations instead")
        return []
    pages = []
    for p in value:
        if not isinstance(p, dict) or p.get("id") is None:
            continue
        page = {"id": _text(p.get("id")), "title": _text(p.get("title")) if p.get("title") is not None else None}
        if isinstance(p.get("startedDateTime"), str):
            page["startedDateTime"] = p["startedDateTime"]
        pages.append(page)
    return pages


def read_har_data(path: str, data: Any) -> HarRecording:
    from cors_addon.errors import RecordingError

    if not isinstance(data, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(data), "a number")
        raise RecordingError(path, f"not a HAR file: the JSON is {kind}, not an object with a \"log\"")
    if not isinstance(data.get("log"), dict):
        raise RecordingError(path, "not a HAR file: no top-level \"log\" object")
    log = data["log"]
    entries = log.get("entries")
    if not isinstance(entries, list):
        raise RecordingError(path, "not a HAR file: \"log.entries\" is missing or not a list")
    problems = _Problems()
    if not entries:
        problems.file("the HAR has no entries: nothing to audit")
    pages = _pages(log, problems)
    creator = log.get("creator") if isinstance(log.get("creator"), dict) else {}
    exchanges = []
    for index, entry in enumerate(entries):
        try:
            exchanges.append(_entry_to_exchange(entry, index, problems))
        except ValueError as exc:
            problems.entry(index, f"{exc}; skipped")
    name, version = _text(creator.get("name", "?")), _text(creator.get("version", ""))
    return HarRecording(
        path=path, data=data, exchanges=exchanges, pages=pages,
        creator=f"{name} {version}".strip(), skipped=problems.lines(),
    )
