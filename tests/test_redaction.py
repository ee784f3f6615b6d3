"""No leaks: cookies, credentials and token-like values stay out of every report
unless ``--show-secrets``; the annotated HAR keeps them (it is the user's recording)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cors_addon.cli import main
from cors_addon.redact import (
    REDACTED,
    is_secret_name,
    redact_header,
    redact_report,
    redact_text,
    redact_url,
)
from cors_addon.writers import FORMATS
from tests.conftest import ROOT

APP, API = "http://app.test", "http://api.test"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJTRUNSRVQxMCJ9.c2lnbmF0dXJlMTA"
HEX = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"
SECRETS = {
    "cookie": "COOKIESECRET1", "authorization": "AUTHSECRET2", "proxy": "UFJPWFlTRUNSRVQz",
    "set-cookie": "SETCOOKIESECRET4", "api-key": "APIKEYSECRET5", "url-token": "URLTOKEN6",
    "url-key": "URLKEY7", "userinfo": "PASSWORD8", "fragment": "FRAGTOKEN9", "jwt": JWT,
    "max-age": "MAXAGESECRET11", "page-code": "OAUTHCODE12", "path-token": HEX,
    "origin-token": "sk_live_51HabcdEFGhijkLMNopqrSTUvwx",
}


def _entry(method, url, req, status, resp, second):
    return {
        "pageref": "page_1", "startedDateTime": f"2024-05-01T10:00:0{second}.000Z", "time": 20,
        "request": {"method": method, "url": url, "httpVersion": "HTTP/1.1", "cookies": [], "queryString": [],
                    "headers": [{"name": k, "value": v} for k, v in req], "headersSize": -1, "bodySize": 0},
        "response": {"status": status, "statusText": "", "httpVersion": "HTTP/1.1", "cookies": [],
                     "headers": [{"name": k, "value": v} for k, v in resp], "content": {"size": 0},
                     "redirectURL": "", "headersSize": -1, "bodySize": 0},
        "cache": {}, "timings": {"send": 1, "wait": 18, "receive": 1},
    }


def secret_har() -> dict:
    s = SECRETS
    url = f"http://user:{s['userinfo']}@api.test/reset/{s['path-token']}?access_token={s['url-token']}" \
          f"&api_key={s['url-key']}&page=2#access_token={s['fragment']}"
    creds = [("Cookie", f"session={s['cookie']}"), ("Authorization", f"Bearer {s['authorization']}"),
             ("Proxy-Authorization", f"Basic {s['proxy']}"), ("X-Api-Key", s["api-key"])]
    cors = [("Origin", APP), ("Sec-Fetch-Mode", "cors"), ("Referer", APP + "/")]
    return {"log": {"version": "1.2", "creator": {"name": "test", "version": "1"},
                    "pages": [{"id": "page_1", "title": f"{APP}/callback?code={s['page-code']}",
                               "startedDateTime": "2024-05-01T10:00:00.000Z"}],
                    "entries": [
        _entry("OPTIONS", url, cors + [("Access-Control-Request-Method", "PUT"),
                                       ("Access-Control-Request-Headers", "authorization, x-api-key")], 204,
               [("Access-Control-Allow-Origin", JWT), ("Access-Control-Max-Age", f"Bearer {s['max-age']}"),
                ("Set-Cookie", f"sid={s['set-cookie']}; HttpOnly")], 0),
        _entry("PUT", url, cors + creds, 0, [], 0),
        _entry("GET", url, cors + creds, 200, [("Access-Control-Allow-Origin", APP),
                                               ("Set-Cookie", f"sid={s['set-cookie']}")], 1),
        _entry("GET", f"{API}/other?q=1", [("Origin", s["origin-token"]), ("Sec-Fetch-Mode", "cors")] + creds, 200,
               [("Access-Control-Allow-Origin", APP)], 2),
    ]}}


@pytest.fixture
def recording(tmp_path):
    path = tmp_path / "secrets.har"
    path.write_text(json.dumps(secret_har()))
    return path


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_secret_in_any_report(fmt, recording, tmp_path, capsys):
    out = tmp_path / f"report.{fmt}"
    assert main([str(recording), "--format", fmt, "-o", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    leaked = {k: v for k, v in SECRETS.items() if v in text}
    assert leaked == {}, f"{fmt} report leaks {sorted(leaked)}"
    assert REDACTED in text or fmt == "table" and "[redacted]" in text


@pytest.mark.parametrize("fmt", ["json", "markdown", "table"])
def test_show_secrets_shows_them(fmt, recording, tmp_path):
    out = tmp_path / f"report.{fmt}"
    assert main([str(recording), "--format", fmt, "-o", str(out), "--show-secrets"]) == 0
    text = out.read_text(encoding="utf-8")
    if fmt != "markdown":  # the Markdown report shows no request URLs
        assert SECRETS["userinfo"] in text
    if fmt != "table":  # the table shortens long cells
        assert SECRETS["origin-token"] in text
    if fmt == "json":
        assert SECRETS["url-token"] in text and SECRETS["jwt"] in text and SECRETS["page-code"] in text


def test_annotated_har_keeps_every_secret(recording, tmp_path):
    out = tmp_path / "annotated.har"
    assert main([str(recording), "--annotate", str(out), "-o", str(tmp_path / "r.txt")]) == 0
    text = out.read_text(encoding="utf-8")
    assert all(v in text for v in SECRETS.values())


def test_redaction_changes_no_number_id_or_verdict(recording):
    from cors_addon.audit import analyze
    from cors_addon.engines import get_engine
    from cors_addon.sources.load import load_recording

    rec = load_recording(str(recording))
    report = analyze(rec.exchanges, get_engine("chromium"), pages=rec.pages)
    before = report.as_dict()
    safe = redact_report(report).as_dict()
    assert report.as_dict() == before  # the original is untouched
    assert safe["summary"] == before["summary"]
    keep = ("id", "page", "kind", "verdict", "cors_error", "pair", "status", "redundant", "cause")
    assert [{k: f[k] for k in keep} for f in safe["flows"]] == [{k: f[k] for k in keep} for f in before["flows"]]
    assert [(f["id"], f["count"], f["flows"]) for f in safe["findings"]] == \
           [(f["id"], f["count"], f["flows"]) for f in before["findings"]]


def test_live_addon_reports_are_redacted():
    from mitmproxy import http
    from mitmproxy.test import taddons, tflow

    from cors_addon.addon import CorsAddon

    addon = CorsAddon()
    with taddons.context(addon):
        f = tflow.tflow(req=http.Request.make("GET", f"{API}/x?access_token={SECRETS['url-token']}", b"",
                                              {"Origin": APP, "Sec-Fetch-Mode": "cors"}))
        f.response = http.Response.make(200, b"", {})
        text = addon.summary([f])
    assert SECRETS["url-token"] not in text and "access_token=[redacted]" in text


@pytest.mark.parametrize("name, secret", [
    ("Cookie", True), ("set-cookie", True), ("AUTHORIZATION", True), ("Proxy-Authorization", True),
    ("X-Api-Key", True), ("X-Auth-Token", True), ("X-CSRF-Token", True), ("api_key", True), ("access_token", True),
    ("sig", True), ("code", True), ("key", True),
    ("Access-Control-Allow-Headers", False), ("Origin", False), ("Content-Type", False), ("page", False),
    ("zipcode", False), ("Sec-Fetch-Mode", False), ("keyboard", False),
])
def test_secret_names(name, secret):
    assert is_secret_name(name) is secret


@pytest.mark.parametrize("text, kept, gone", [
    ("Bearer abc.def", "Bearer", "abc.def"),
    (f"token {JWT} end", "end", JWT),
    (f"{API}/x?access_token=abc&page=2", "page=2", "abc"),
    (f"{API}/x?q=hello%20world&n=a+b", f"{API}/x?q=hello%20world&n=a+b", None),
    (f"https://u:pw@api.test/r/{HEX}?x=1", "api.test/r/", "pw@"),
    ("/_next/static/chunks/pages/_app-02685a0c4b16c2c8.js", "_app-02685a0c4b16c2c8.js", None),
    ("same question answered by 8c4e5d0a-2b1f-4c3e-9a7d-6f5e4d3c2b1a 3.2s earlier", "8c4e5d0a-2b1f", None),
    ("Access-Control-Allow-Origin: http://app.test + Vary: Origin", "http://app.test + Vary", None),
    ("http://[::1/x?token=1&a=2", "a=2", "token=1"),
])
def test_redact_text(text, kept, gone):
    out = redact_text(text)
    assert kept in out
    if gone:
        assert gone not in out
    assert redact_text(out) == out  # idempotent
    assert redact_url(redact_url(text)) == redact_url(text)


def test_redact_header():
    assert redact_header("Cookie", "a=1") == REDACTED
    assert redact_header("Access-Control-Allow-Origin", "http://app.test") == "http://app.test"
    assert redact_header("Access-Control-Allow-Origin", JWT) == REDACTED


_URL_CHARS = "aZ09-._~/:?&;=!$'()*,eyJ%+@#[] \t" + "abcdefxyzABC0123456789" * 3 + "é"


@settings(max_examples=3000, deadline=None)
@given(scheme=st.sampled_from(["https", "http", "HTTP", "ws", "chrome-extension", "1x", ""]),
       rest=st.text(st.sampled_from(list(_URL_CHARS)), max_size=60),
       name=st.sampled_from(["", "q", "token", "sku", "api_key", "x_sig", "Auth", "page", "code"]))
def test_the_shortcut_for_plain_urls_changes_nothing_redaction_would_change(scheme, rest, name):
    """``redact_url`` gives a plain URL back without taking it apart only when taking it
    apart would have given the same text back."""
    from cors_addon.redact import _nothing_to_redact, _redact_url

    for url in (f"{scheme}://{rest}", f"{scheme}://api.test/p?{name}={rest}", f"{scheme}://h.test/{rest}?a=1&{name}=2"):
        if _nothing_to_redact(url):
            assert _redact_url(url) == url


def test_the_shortcut_agrees_on_every_recorded_url():
    from cors_addon.redact import _nothing_to_redact, _redact_url
    from cors_addon.sources.load import load_recording

    root = ROOT / "recordings"
    urls = {ex.url for path in root.glob("*/*.har") for ex in load_recording(str(path)).exchanges}
    taken = [u for u in urls if _nothing_to_redact(u)]
    assert len(taken) > len(urls) / 3  # the shortcut is the common case
    assert all(_redact_url(u) == u for u in taken)
