"""The addon never raises into mitmproxy: a running mitmdump whose CORS analysis fails
for one flow logs that once, with the flow's URL, and keeps serving and analysing.

A second script, loaded after ``cors_addon.py``, makes the analysis of any URL
containing ``boom`` fail: in mitmproxy's process (``cors_helper=false``) ``Analyzer.add``
raises; with the helper process, what the proxy sends it for that flow cannot be read
there. Requests go through the real proxy to a loopback server.
"""

from __future__ import annotations

import json
import pathlib
import urllib.request
from http.server import BaseHTTPRequestHandler

import pytest

from tests.proxy import Mitmdump, serve

APP = "http://app.test"

BOOM_SCRIPT = '''
"""Test-only addon: the CORS analysis of any flow whose URL contains "boom" fails."""
from cors_addon.analyzer import Analyzer

_add = Analyzer.add


def add(self, ex):
    if "boom" in ex.url:
        raise RuntimeError("injected failure")
    return _add(self, ex)


Analyzer.add = add
'''

BOOM_IN_HELPER_SCRIPT = '''
"""Test-only addon: what the helper process receives for a "boom" flow is unreadable."""
from cors_addon import live_wire

_complete = live_wire.complete_event


def complete_event(f, *args):
    event = _complete(f, *args)
    if "boom" in f.request.path:
        return event._replace(response=("HTTP/1.1", "not a status"))
    return event


live_wire.complete_event = complete_event
'''


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _send(self, status, headers, body=b""):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        acao = {} if "noacao" in self.path else {"Access-Control-Allow-Origin": APP}
        self._send(200, {"Content-Type": "text/plain", **acao}, f"served {self.path}".encode())

    def do_PUT(self):
        self._send(200, {"Access-Control-Allow-Origin": APP}, b"put ok")

    def do_OPTIONS(self):
        self._send(204, {"Access-Control-Allow-Origin": APP, "Access-Control-Allow-Methods": "PUT"})

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    with serve(Handler) as url:
        yield url


def boom_mitmdump(tmp_path: pathlib.Path, *extra: str, helper: bool) -> Mitmdump:
    boom = tmp_path / "boom_addon.py"
    boom.write_text(BOOM_IN_HELPER_SCRIPT if helper else BOOM_SCRIPT)
    return Mitmdump("-s", str(boom), "--set", f"cors_helper={str(helper).lower()}", *extra)


def fetch(opener, method, url, headers):
    req = urllib.request.Request(url, method=method, headers=headers)
    with opener.open(req, timeout=20) as resp:
        return resp.status, resp.read()


@pytest.mark.parametrize("helper", [True, False], ids=["helper-process", "in-process"])
def test_a_failing_analysis_is_logged_once_and_the_proxy_keeps_serving(tmp_path, server, monkeypatch, helper):
    for var in ("no_proxy", "NO_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(var, raising=False)
    report = tmp_path / "report.json"
    proxy = boom_mitmdump(tmp_path, "--set", f"cors_report={report}", helper=helper)
    try:
        opener = proxy.opener()
        cors = {"Origin": APP, "Sec-Fetch-Mode": "cors"}
        assert fetch(opener, "GET", f"{server}/before", cors) == (200, b"served /before")
        boom = f"{server}/boom?x=1"
        assert fetch(opener, "GET", boom, cors) == (200, b"served /boom?x=1")
        # the proxy still serves, and still analyses, after the failure
        assert fetch(opener, "GET", f"{server}/after", cors) == (200, b"served /after")
        assert fetch(opener, "OPTIONS", f"{server}/items/1", {**cors, "Access-Control-Request-Method": "PUT"})[0] == 204
        assert fetch(opener, "PUT", f"{server}/items/1", cors) == (200, b"put ok")
        assert fetch(opener, "GET", f"{server}/noacao", cors) == (200, b"served /noacao")
        assert proxy.proc.poll() is None, "mitmdump exited"
    finally:
        code = proxy.stop()
    output = "\n".join(proxy.lines)
    assert code == 0, output
    failed = [ln for ln in proxy.lines if "CORS analysis failed" in ln]
    assert len(failed) == 1, output
    assert boom in failed[0]
    assert sum(boom in ln for ln in proxy.lines) == 1, output
    # the one traceback, for the bug report
    assert ("ValueError: " if helper else "RuntimeError: injected failure") in output
    assert f"BLOCKED GET {server}/noacao from {APP}: MissingAllowOriginHeader" in output
    doc = json.loads(report.read_text())
    assert doc["summary"]["exchanges"] == 5  # everything but the failed flow
    assert doc["summary"]["preflights"] == 1 and doc["summary"]["blocked"] == 1
    assert all("boom" not in f["url"] for f in doc["flows"])
