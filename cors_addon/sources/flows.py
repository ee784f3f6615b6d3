"""mitmproxy flows, live or from ``.mitm`` files, as exchanges.

Only the standard library and mitmproxy are used here, so the addon loads into any
mitmproxy. Flows are read duck-typed, which also keeps unit tests free of a proxy.
"""

from __future__ import annotations

from typing import Any

from cors_addon.exchange import Exchange
from cors_addon.headers import Headers

PAGE_METADATA_KEY = "cors_page"
"""Where the live addon notes a flow's page load. Saved ``.mitm`` files keep metadata,
but a recording is re-paged from its navigations, never from an earlier run's ids."""


def _headers(headers: Any) -> Headers:
    """mitmproxy headers as ``items(multi=True)`` gives them (UTF-8 with
    ``surrogateescape``), read straight from their raw fields when there are some; the
    live helper's rebuilt requests carry theirs ready."""
    if type(headers) is Headers:
        return headers
    fields = getattr(headers, "fields", None)
    if type(fields) is tuple:
        return Headers.from_byte_fields(fields)
    return Headers(headers.items(multi=True))


def request_key(flow: Any) -> tuple:
    """What the request side of :func:`flow_to_exchange` is made of, cheaply: when it
    is unchanged between two hooks, the earlier exchange's URL and headers still hold."""
    req = flow.request
    data = getattr(req, "data", None)
    if data is not None:  # mitmproxy's raw fields: no decoding
        return (data.method, data.scheme, data.host, data.port, data.authority, data.path, data.http_version,
                data.timestamp_start, data.headers.fields)
    return (req.method, req.scheme, req.host, req.port, req.authority, req.path, req.http_version,
            req.timestamp_start, req.headers.fields)


def flow_to_exchange(flow: Any, index: int = -1, *, like: Exchange | None = None,
                     request_only: bool = False) -> Exchange:
    """``like``: an exchange made from the same request (see :func:`request_key`), whose
    URL and request headers are reused instead of being read again. ``request_only``:
    the response headers are not read (the ``request`` hook's exchange, used for pages
    and pairing only; a replayed flow already has its response there)."""
    req = flow.request
    resp = flow.response
    started = req.timestamp_start or 0.0
    if resp is not None:
        ended = resp.timestamp_end or resp.timestamp_start or started
    elif flow.error is not None and flow.error.timestamp:
        ended = flow.error.timestamp
    else:
        ended = req.timestamp_end or started
    ended = max(ended, started)
    return Exchange(
        id=flow.id,
        method=req.method,
        url=like.url if like is not None else req.pretty_url,
        request_headers=like.request_headers if like is not None else _headers(req.headers),
        status=resp.status_code if resp is not None else 0,
        response_headers=_headers(resp.headers) if resp is not None and not request_only else Headers(),
        error=flow.error.msg if flow.error is not None else None,
        started=started,
        wire_start=started,
        ended=ended,
        duration_ms=(ended - started) * 1000,
        http_version=req.http_version,
        source_index=index,
    )


def is_http_flow(flow: Any) -> bool:
    return getattr(flow, "type", None) == "http" and getattr(flow, "request", None) is not None
