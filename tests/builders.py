"""Small builders for exchanges, so rule and pairing tests read like traffic."""

from __future__ import annotations

from itertools import count

from cors_addon.exchange import Exchange
from cors_addon.headers import Headers

APP = "http://app.test"
API = "http://api.test"
_ids = count()


def exchange(method, url, headers=(), status=200, response=(), start=0.0, duration_ms=20.0, error=None, origin=APP):
    req = list(headers)
    if origin and not any(k.lower() == "origin" for k, _ in req):
        req.append(("Origin", origin))
    if not any(k.lower() == "sec-fetch-mode" for k, _ in req):
        req.append(("Sec-Fetch-Mode", "cors"))
    n = next(_ids)
    return Exchange(
        id=f"x{n}", method=method, url=url, request_headers=Headers(req), status=status,
        response_headers=Headers(response), error=error, started=start, wire_start=start,
        ended=start + duration_ms / 1000, duration_ms=duration_ms, source_index=n,
    )


def preflight(url, method="PUT", headers="", response=(("Access-Control-Allow-Origin", APP),), status=204,
              start=0.0, duration_ms=20.0, extra=()):
    req = [("Access-Control-Request-Method", method)]
    if headers:
        req.append(("Access-Control-Request-Headers", headers))
    req.extend(extra)
    return exchange("OPTIONS", url, req, status, response, start, duration_ms)


def allow(methods="PUT", headers=None, max_age=None, origin=APP, credentials=False):
    out = [("Access-Control-Allow-Origin", origin), ("Access-Control-Allow-Methods", methods)]
    if headers:
        out.append(("Access-Control-Allow-Headers", headers))
    if max_age is not None:
        out.append(("Access-Control-Max-Age", str(max_age)))
    if credentials:
        out.append(("Access-Control-Allow-Credentials", "true"))
    return tuple(out)
