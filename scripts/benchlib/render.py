"""Render a synthetic session as a Chrome-style HAR and as a mitmproxy flow file."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

from benchlib.traffic import SERVER_IPS, Ex, Session, iso

try:
    import orjson
except ImportError:  # the generator works without it, only slower
    orjson = None

INDENT = b"\n      "
"""Entries sit three levels deep (log, entries, entry) in a 2-space indented HAR."""


def _dumps_indented(obj) -> bytes:
    if orjson is not None:
        return orjson.dumps(obj, option=orjson.OPT_INDENT_2)
    return json.dumps(obj, indent=2, ensure_ascii=False).encode("utf-8")


def _cookies(header: str) -> list[dict]:
    out = []
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        out.append({"name": name, "value": value, "path": "/", "domain": "", "expires": None,
                    "httpOnly": False, "secure": False})
    return out


def har_entry(ex: Ex) -> dict:
    parts = urlsplit(ex.url)
    pseudo = [
        {"name": ":authority", "value": parts.netloc},
        {"name": ":method", "value": ex.method},
        {"name": ":path", "value": parts.path + ("?" + parts.query if parts.query else "")},
        {"name": ":scheme", "value": parts.scheme},
    ]
    req_headers = pseudo + [{"name": k, "value": v} for k, v in ex.req_headers]
    cookie = next((v for k, v in ex.req_headers if k == "cookie"), None)
    request = {
        "method": ex.method,
        "url": ex.url,
        "httpVersion": "http/2.0",
        "headers": req_headers,
        "queryString": [{"name": k, "value": v} for k, v in parse_qsl(parts.query, keep_blank_values=True)],
        "cookies": _cookies(cookie) if cookie else [],
        "headersSize": -1,
        "bodySize": len(ex.req_body),
    }
    if ex.req_body:
        ctype = next((v for k, v in ex.req_headers if k == "content-type"), "text/plain")
        request["postData"] = {"mimeType": ctype, "text": ex.req_body.decode()}
    content = {"size": len(ex.resp_body), "mimeType": ex.mime}
    if ex.resp_body:  # DevTools' "Save all as HAR with content": text, or base64 for binary
        if ex.mime.startswith(("text/", "application/json", "application/javascript")):
            content["text"] = ex.resp_body.decode()
        else:
            content["text"] = base64.b64encode(ex.resp_body).decode()
            content["encoding"] = "base64"
    response = {
        "status": ex.status,
        "statusText": "",
        "httpVersion": "http/2.0",
        "headers": [{"name": k, "value": v} for k, v in ex.resp_headers],
        "cookies": [],
        "content": content,
        "redirectURL": "",
        "headersSize": -1,
        "bodySize": len(ex.resp_body),
        "_transferSize": len(ex.resp_body) + 120,
        "_error": ex.error,
        "_fetchedViaServiceWorker": False,
    }
    total = (ex.ended - ex.started) * 1000
    blocked = (ex.wire - ex.started) * 1000
    rest = max(total - blocked, 0.0)
    timings = {
        "blocked": round(blocked, 3),
        "dns": -1,
        "ssl": -1,
        "connect": -1,
        "send": round(rest * 0.02, 3),
        "wait": round(rest * 0.9, 3),
        "receive": round(rest * 0.08, 3),
        "_blocked_queueing": round(min(blocked, 0.9), 3),
        "_workerStart": -1,
        "_workerReady": -1,
        "_workerFetchStart": -1,
        "_workerRespondWithSettled": -1,
    }
    origin = ex.url.split("/", 3)
    return {
        "_connectionId": ex.connection,
        "_initiator": ex.initiator,
        "_priority": ex.priority,
        "_resourceType": ex.resource_type,
        "cache": {},
        "connection": ex.connection,
        "pageref": ex.page,
        "request": request,
        "response": response,
        "serverIPAddress": SERVER_IPS.get(origin[0] + "//" + origin[2], "192.0.2.1"),
        "startedDateTime": iso(ex.started),
        "time": round(total, 3),
        "timings": timings,
    }


def write_har(session: Session, path: str) -> int:
    """A HAR as Chrome's DevTools exports it (2-space indent), written as it goes."""
    head = {"version": "1.2", "creator": {"name": "WebInspector", "version": "537.36"},
            "pages": [{"startedDateTime": iso(p.started), "id": p.id, "title": p.url,
                       "pageTimings": {"onContentLoad": 412.5, "onLoad": 980.25}} for p in session.pages]}
    text = _dumps_indented({"log": head})
    assert text.endswith(b"\n  }\n}")
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(text[: -len(b"\n  }\n}")] + b',\n    "entries": [')
        for i, ex in enumerate(session.exchanges):
            fh.write((b"\n      " if i == 0 else b",\n      ") + _dumps_indented(har_entry(ex)).replace(b"\n", INDENT))
        fh.write(b"\n    ]\n  }\n}\n")
    os.replace(tmp, path)
    return os.path.getsize(path)


def _flows(session: Session) -> Iterator:
    from mitmproxy import connection, http
    from mitmproxy.connection import ConnectionState
    from mitmproxy.proxy.mode_specs import ProxyMode

    mode = ProxyMode.parse("regular")
    clients: dict[str, connection.Client] = {}
    servers: dict[str, connection.Server] = {}
    for n, ex in enumerate(sorted(session.exchanges, key=lambda e: e.ended)):
        parts = urlsplit(ex.url)
        key = parts.netloc + "#" + ex.connection
        client = clients.get(key)
        if client is None:
            client = clients[key] = connection.Client(
                peername=("127.0.0.1", 40000 + len(clients) % 20000), sockname=("127.0.0.1", 8080),
                timestamp_start=ex.started - 0.05, timestamp_tls_setup=ex.started - 0.03, sni=parts.hostname,
                alpn=b"h2", tls_version="TLSv1.3", cipher="TLS_AES_128_GCM_SHA256", state=ConnectionState.OPEN,
                tls=True, proxy_mode=mode,
            )
            servers[key] = connection.Server(
                address=(parts.hostname, 443), peername=(SERVER_IPS.get(f"{parts.scheme}://{parts.netloc}", "192.0.2.1"), 443),
                sockname=("10.0.0.2", 50000 + len(servers) % 10000), timestamp_start=ex.started - 0.04,
                timestamp_tcp_setup=ex.started - 0.035, timestamp_tls_setup=ex.started - 0.03, sni=parts.hostname,
                alpn=b"h2", tls_version="TLSv1.3", state=ConnectionState.CLOSED, tls=True,
            )
        req = http.Request.make(ex.method, ex.url, ex.req_body,
                                http.Headers([(k.encode(), v.encode()) for k, v in ex.req_headers]))
        req.http_version = "HTTP/2.0"
        req.timestamp_start, req.timestamp_end = ex.wire, ex.wire + 0.0005
        resp = http.Response.make(ex.status, ex.resp_body,
                                  http.Headers([(k.encode(), v.encode()) for k, v in ex.resp_headers]))
        resp.http_version = "HTTP/2.0"
        resp.timestamp_start = max(ex.ended - 0.002, ex.wire + 0.0005)
        resp.timestamp_end = ex.ended
        f = http.HTTPFlow(client, servers[key])
        f.timestamp_created = ex.wire
        f.request, f.response = req, resp
        f.live = False
        yield f


def write_mitm(session: Session, path: str) -> int:
    """Flows in completion order, as ``mitmdump -w`` saves them, via mitmproxy's writer."""
    from mitmproxy import io

    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        writer = io.FlowWriter(fh)
        for f in _flows(session):
            writer.add(f)
    os.replace(tmp, path)
    return os.path.getsize(path)
