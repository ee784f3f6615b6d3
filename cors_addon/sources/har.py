"""HAR from Chrome, Firefox, mitmproxy and proxies, read defensively.

Every field except ``request.method``/``request.url`` is optional in practice:
status 0 with ``_error`` for failures, ``-1`` and slightly negative timings, ``content:
{}``, pseudo-headers, a BOM (see ``shared/reference/har-formats.md``). An entry that
cannot be read is reported and skipped; the rest of the file still counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cors_addon.exchange import Exchange
from cors_addon.headers import Headers


@dataclass(slots=True)
class HarRecording:
    path: str
    data: dict
    exchanges: list[Exchange]
    pages: list[dict]
    creator: str
    skipped: list[str] = field(default_factory=list)


def parse_time(value: Any) -> float | None:
    """``startedDateTime`` with any offset and 0-7 fractional digits (Fiddler writes 7)."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    if "." in text:
        head, _, rest = text.partition(".")
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = head + "." + rest[:min(digits, 6)].ljust(1, "0") + rest[digits:]
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


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


def _headers(value: Any) -> Headers:
    pairs = []
    if isinstance(value, list):
        for h in value:
            if isinstance(h, dict) and "name" in h:
                pairs.append((str(h.get("name")), "" if h.get("value") is None else str(h.get("value"))))
            elif isinstance(h, (list, tuple)) and len(h) == 2:
                pairs.append((str(h[0]), str(h[1])))
    elif isinstance(value, dict):
        pairs = [(str(k), str(v)) for k, v in value.items()]
    return Headers(pairs)


def entry_to_exchange(entry: Any, index: int) -> Exchange:
    if not isinstance(entry, dict):
        raise ValueError("entry is not an object")
    request = entry.get("request")
    if not isinstance(request, dict):
        raise ValueError("entry has no request object")
    method, url = request.get("method"), request.get("url")
    if not isinstance(method, str) or not method or not isinstance(url, str) or not url:
        raise ValueError("request has no method or url")
    response = entry.get("response") if isinstance(entry.get("response"), dict) else {}
    timings = entry.get("timings") if isinstance(entry.get("timings"), dict) else {}
    started = parse_time(entry.get("startedDateTime"))
    if started is None:
        raise ValueError("startedDateTime is missing or not a date")
    duration = _duration_ms(entry, timings)
    status = _number(response.get("status"))
    error = response.get("_error")
    initiator = entry.get("_initiator") if isinstance(entry.get("_initiator"), dict) else {}
    pageref = entry.get("pageref")
    request_headers = _headers(request.get("headers"))
    if method.upper() == method and ":method" in request_headers:
        method = request_headers.get(":method") or method
    return Exchange(
        id=f"e{index}",
        method=method,
        url=url,
        request_headers=request_headers,
        status=int(status) if status is not None and 0 <= status < 1000 else 0,
        response_headers=_headers(response.get("headers")),
        error=str(error) if error not in (None, "") else None,
        started=started,
        wire_start=started + _blocked_ms(timings) / 1000,
        ended=started + duration / 1000,
        duration_ms=duration,
        pageref=str(pageref) if isinstance(pageref, (str, int)) else None,
        resource_type=entry.get("_resourceType") if isinstance(entry.get("_resourceType"), str) else None,
        initiator_type=initiator.get("type") if isinstance(initiator.get("type"), str) else None,
        http_version=str(request.get("httpVersion") or ""),
        source_index=index,
        from_cache=bool(entry.get("_fromCache")),
    )


def read_har_data(path: str, data: Any) -> HarRecording:
    from cors_addon.errors import RecordingError

    if not isinstance(data, dict) or not isinstance(data.get("log"), dict):
        raise RecordingError(path, "not a HAR file: no top-level \"log\" object")
    log = data["log"]
    entries = log.get("entries")
    if not isinstance(entries, list):
        raise RecordingError(path, "not a HAR file: \"log.entries\" is missing or not a list")
    pages = [p for p in log.get("pages") or [] if isinstance(p, dict) and "id" in p] if isinstance(log.get("pages"), list) else []
    creator = log.get("creator") if isinstance(log.get("creator"), dict) else {}
    exchanges, skipped = [], []
    for index, entry in enumerate(entries):
        try:
            exchanges.append(entry_to_exchange(entry, index))
        except ValueError as exc:
            skipped.append(f"entry {index}: {exc}")
    return HarRecording(
        path=path, data=data, exchanges=exchanges, pages=pages,
        creator=f"{creator.get('name', '?')} {creator.get('version', '')}".strip(), skipped=skipped,
    )
