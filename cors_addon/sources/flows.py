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


def flow_to_exchange(flow: Any, index: int = -1) -> Exchange:
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
        url=req.pretty_url,
        request_headers=Headers(req.headers.items(multi=True)),
        status=resp.status_code if resp is not None else 0,
        response_headers=Headers(resp.headers.items(multi=True)) if resp is not None else Headers(),
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
