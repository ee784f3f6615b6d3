"""Nothing from traffic acts on the operator's terminal: control characters, line and
paragraph separators, bidi overrides and lone surrogates are shown as escapes in the
BLOCKED lines, flow comments and the table report, and long values are cut with a
count of what was cut. Last, the same through a real mitmdump's console output."""

from __future__ import annotations

import re
import socket
from http.server import BaseHTTPRequestHandler

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mitmproxy import http
from mitmproxy.test import tflow

from cors_addon.audit import analyze
from cors_addon.engines import get_engine
from cors_addon.live import LiveSession
from cors_addon.terminal import cut_marker, printable
from cors_addon.writers import render
from tests.builders import API, APP, allow, exchange, preflight
from tests.proxy import Mitmdump, serve

HOSTILE_METHOD = "\x1b[2J\x1b]0;pwned\x07PUT"
"""Clears the screen and sets the window title: the value a user reported."""
FORBIDDEN = frozenset(
    [chr(c) for c in range(0x00, 0x20)] + [chr(c) for c in range(0x7F, 0xA0)] + ["\u2028", "\u2029"]
    + [chr(c) for c in range(0x202A, 0x202F)] + [chr(c) for c in range(0x2066, 0x206A)]
    + [chr(c) for c in range(0xD800, 0xE000)]
)
MARKER = re.compile(r"…\[\+[\d,]+ chars\]$")


def raw_controls(text: str) -> set[str]:
    return set(text) & FORBIDDEN


# -- the function --------------------------------------------------------------------


@pytest.mark.parametrize(("char", "shown"), [
    ("\x00", "\\x00"), ("\x07", "\\x07"), ("\t", "\\x09"), ("\n", "\\x0a"), ("\r", "\\x0d"), ("\x1b", "\\x1b"),
    ("\x1f", "\\x1f"), ("\x7f", "\\x7f"), ("\x80", "\\x80"), ("\x9b", "\\x9b"), ("\x9f", "\\x9f"),
    ("\u2028", "\\u2028"), ("\u2029", "\\u2029"), ("\u202a", "\\u202a"), ("\u202e", "\\u202e"),
    ("\u2066", "\\u2066"), ("\u2069", "\\u2069"), ("\udc9b", "\\udc9b"),
], ids=["NUL", "BEL", "TAB", "LF", "CR", "ESC", "US", "DEL", "PAD", "CSI", "APC", "LS", "PS", "LRE", "RLO",
        "LRI", "PDI", "surrogate"])
def test_each_kind_of_control_becomes_a_visible_escape(char, shown):
    assert printable(f"a{char}b") == f"a{shown}b"


@pytest.mark.parametrize("text", [
    "PUT", "http://bücher.test/ü?q=😀&x=a\\x1b", "Ölçü 日本語 עברית مرحبا 👍🏽 👨‍👩‍👧", "",
    "\u00a0\u2027\u202f\u2065\u206a",  # the neighbours of the escaped ranges
])
def test_ordinary_text_is_unchanged(text):
    assert printable(text) == text
    assert printable(text, len(text)) == text


def test_a_long_value_is_cut_with_a_count_of_what_was_cut():
    assert printable("P" * 8000, 188) == "P" * 188 + "…[+7,812 chars]"
    assert printable("P" * 8000) == "P" * 8000


def test_escapes_count_towards_the_limit_and_are_never_cut_in_half():
    assert printable("\x1b" * 10, 10) == "\\x1b\\x1b" + cut_marker(8)
    assert printable("ab\u202ecd", 7) == "ab" + cut_marker(3)
    assert printable(None) == "None"


@settings(derandomize=True, max_examples=300, deadline=None)
@given(text=st.text(st.one_of(st.sampled_from(sorted(FORBIDDEN)), st.characters(exclude_categories=())),
                    max_size=200),
       limit=st.none() | st.integers(0, 120))
def test_no_control_gets_through_and_the_limit_holds(text, limit):
    shown = printable(text, limit)
    assert not raw_controls(shown)
    if limit is None:
        return
    assert len(shown) <= limit + len(cut_marker(len(text)))
    kept = MARKER.sub("", shown)
    assert printable(text).startswith(kept)
    assert (kept == shown) == (kept == printable(text))


# -- where traffic is shown ----------------------------------------------------------


def _blocked_preflight(method: str, origin: str = APP) -> tuple[str, str]:
    """A preflight the server answers without allowing its method (so the message
    quotes it too); its BLOCKED line and comment."""
    notes = []
    session = LiveSession(on_annotation=notes.append)
    f = tflow.tflow(
        req=http.Request.make("OPTIONS", f"{API}/items/1", b"", {
            "Origin": origin, "Access-Control-Request-Method": method, "Sec-Fetch-Mode": "cors"}),
        resp=http.Response.make(204, b"", {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Methods": "GET"}),
    )
    session.begin(f)
    session.complete(f)
    [line] = [n.log_line for n in notes if n.log_line]
    assert notes[-1].comment.startswith("CORS blocked: MethodDisallowedByPreflightResponse")
    return line, notes[-1].comment


def test_a_hostile_method_is_escaped_in_the_blocked_line_and_comment():
    line, comment = _blocked_preflight(HOSTILE_METHOD, origin=APP + "\u202e\x9b")
    assert not raw_controls(line) and not raw_controls(comment)
    shown = printable(HOSTILE_METHOD)
    assert line.startswith(f"BLOCKED {shown} {API}/items/1 from {APP}\\u202e\\x9b: ")
    assert f"Fix: Access-Control-Allow-Methods: {shown}, GET" in line
    assert f"Method {shown} is not allowed" in comment


def test_an_8000_byte_method_is_cut_in_the_blocked_line_and_comment():
    line, comment = _blocked_preflight("P" * 8000)
    assert line.startswith("BLOCKED " + "P" * 64 + cut_marker(8000 - 64) + f" {API}/items/1 ")
    assert len(line) < 1500 and len(comment) < 600
    assert re.search(r"PPP…\[\+[\d,]+ chars\]$", comment)
    assert "Fix: Access-Control-Allow-Methods: GET, PPP" in line


def test_the_table_report_escapes_and_cuts_traffic():
    long_path = "/" + "p" * 3000
    exchanges = [
        preflight(f"{API}/items/1", method=HOSTILE_METHOD, response=allow("GET")),
        exchange(HOSTILE_METHOD, f"{API}/items/1", status=0, error="net::ERR_FAILED"),
        exchange("GET", f"{API}{long_path}\u2066", origin=APP + "\u2028", status=500),
    ]
    text = render([("rec\x1b.har", analyze(exchanges, get_engine("chromium")))], "table")
    assert not raw_controls(text.replace("\n", ""))
    assert "rec\\x1b.har" in text and "\\x1b[2J" in text
    assert re.search(r"p…\[\+[\d,]+ chars\]", text)
    assert max(map(len, text.splitlines())) < 400


# -- a real mitmdump -----------------------------------------------------------------


class NoCorsHandler(BaseHTTPRequestHandler):
    """Answers every preflight without a CORS header: each one is blocked."""

    protocol_version = "HTTP/1.1"

    def do_OPTIONS(self):
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def _raw_preflight(proxy_port: int, url: str, headers: bytes) -> bytes:
    """Through the proxy as bytes: urllib and http.client refuse control characters
    in header values, which is what a hostile client sends."""
    with socket.create_connection(("127.0.0.1", proxy_port), timeout=20) as sock:
        sock.sendall(f"OPTIONS {url} HTTP/1.1\r\nHost: {url.split('/')[2]}\r\n".encode()
                     + headers + b"Sec-Fetch-Mode: cors\r\nConnection: close\r\n\r\n")
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    return response


def test_mitmdump_console_gets_no_control_characters_from_traffic():
    with serve(NoCorsHandler) as server:
        proxy = Mitmdump()
        try:
            first = _raw_preflight(proxy.port, f"{server}/items/1",
                                   b"Origin: http://app.test\r\nAccess-Control-Request-Method: "
                                   + HOSTILE_METHOD.encode() + b"\r\n")
            # a bidi override and an 8-bit CSI as UTF-8, and a bare 0x9b byte
            second = _raw_preflight(proxy.port, f"{server}/items/2",
                                    b"Origin: http://app.test\xe2\x80\xae\xc2\x9b\x9b\r\n"
                                    b"Access-Control-Request-Method: " + b"P" * 8000 + b"\r\n")
        finally:
            code = proxy.stop()
    output = "\n".join(proxy.lines)
    assert first.startswith(b"HTTP/1.1 204") and second.startswith(b"HTTP/1.1 204"), output
    assert code == 0, output
    assert "Traceback" not in output
    assert not raw_controls(output.replace("\n", "").replace("\t", "")), output
    blocked = [ln for ln in proxy.lines if "BLOCKED" in ln]
    assert len(blocked) == 2, output
    assert f"BLOCKED {printable(HOSTILE_METHOD)} {server}/items/1 from {APP}: " in blocked[0]
    assert f"from {APP}\\u202e\\x9b\\udc9b: " in blocked[1] and cut_marker(8000 - 64) in blocked[1]
