"""The HTML report: the same numbers as the JSON report, grouped waterfalls, nothing
fetched, nothing from traffic unescaped, no secrets; and in a real Chromium."""

import json
import os
from html.parser import HTMLParser

import pytest
from mitmproxy.test import taddons

from cors_addon.addon import CorsAddon
from cors_addon.audit import analyze
from cors_addon.cli import main
from cors_addon.engines import get_engine
from cors_addon.sources.load import load_recording
from cors_addon.writers.html import HtmlSource, render_html
from tests.builders import API, APP, allow, exchange, preflight
from tests.test_addon import cycle, make_flow
from tests.conftest import CHROMIUM, ROOT, require_browser

LAB = ROOT / "recordings/lab-chromium/flows.har"
MAXAGE = ROOT / "recordings/maxage-before/flows.har"
ENGINES = ("chromium", "firefox", "webkit")
AGES = (600, 7200, 86400)
PAGE_KEYS = ("requests", "cross_origin_requests", "preflights", "redundant_preflights", "blocked",
             "preflight_time_ms", "avoidable_time_ms")


class Numbers(HTMLParser):
    """Every ``data-k`` value with the ``data-page``/``data-total``/``data-what-if``
    of its ancestors, and the waterfall rows in document order."""

    VOID = {"br", "meta", "link", "rect", "line", "path", "input", "img"}

    def __init__(self):
        super().__init__()
        self.stack: list[dict] = []
        self.values: list[tuple[dict, str, str]] = []
        self.rows: list[dict] = []
        self._key: tuple[dict, str] | None = None
        self._text = ""

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "g" and "data-role" in attrs:
            self.rows.append({**attrs, "page": self._context().get("data-page")})
        if "data-k" in attrs:
            self._key, self._text = (self._context() | attrs, attrs["data-k"]), ""
        if tag not in self.VOID:
            self.stack.append((tag, attrs))

    def handle_startendtag(self, tag, attrs):
        pass

    def handle_endtag(self, tag):
        if tag in self.VOID or all(t != tag for t, _ in self.stack):
            return
        while True:
            t, closing = self.stack.pop()
            if self._key and "data-k" in closing:
                self.values.append((self._key[0], self._key[1], self._text.strip()))
                self._key = None
            if t == tag:
                return

    def handle_data(self, data):
        if self._key:
            self._text += data

    def _context(self) -> dict:
        out: dict = {}
        for _, attrs in self.stack:
            out.update({k: v for k, v in attrs.items() if k in ("data-page", "data-total", "data-what-if", "class")})
        return out


def parse(html: str) -> Numbers:
    p = Numbers()
    p.feed(html)
    return p


def number(text: str) -> float:
    return float(text.replace(",", ""))


def json_report(tmp_path, *args) -> dict:
    out = tmp_path / f"r{len(list(tmp_path.iterdir()))}.json"
    assert main([str(LAB), "--format", "json", "-o", str(out), *args]) == 0
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def lab_html(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("html") / "report.html"
    assert main([str(LAB), "-o", str(out)]) == 0
    return out.read_text()


def test_numbers_equal_the_json_report(lab_html, tmp_path):
    doc = json_report(tmp_path)
    values = parse(lab_html).values
    totals = {k: number(v) for ctx, k, v in values if "data-total" in ctx and "data-what-if" not in ctx}
    for key in ("pages", "cross_origin_requests", "preflights", "redundant_preflights", "blocked",
                "preflight_time_ms", "avoidable_time_ms"):
        assert totals[key] == doc["summary"][key], key
    ranked = {}
    for ctx, k, v in values:
        if "data-page" in ctx and "data-what-if" not in ctx:
            ranked.setdefault(ctx["data-page"], {})[k] = number(v)
    assert set(ranked) == {p["id"] for p in doc["pages"]}
    for page in doc["pages"]:
        assert ranked[page["id"]] == {k: page[k] for k in PAGE_KEYS}


def test_what_if_panel_equals_json_reports_per_engine(lab_html, tmp_path):
    values = parse(lab_html).values
    what_if_args = [a for age in AGES for a in ("--what-if-max-age", str(age))]
    for engine in ENGINES:
        doc = json_report(tmp_path, "--browser", engine, *what_if_args)
        for age in AGES:
            cells = {}
            for ctx, k, v in values:
                if ctx.get("data-what-if") == f"{engine}:{age}":
                    cells.setdefault(ctx.get("data-page", "total"), {})[k] = number(v)
            key = f"max_age_{age}"
            assert cells.pop("total") == doc["summary"]["what_if"][key]
            assert cells == {p["id"]: p["what_if"].get(key, {"preflights_saved": 0, "time_saved_ms": 0.0})
                             for p in doc["pages"]}


def grouped(rows: list[dict]) -> None:
    """Each preflight's row is directly followed by the request it authorised (or, if
    the browser never sent it, by the never-sent row)."""
    for i, row in enumerate(rows):
        if row["data-role"] == "preflight" and row["data-pair"]:
            nxt = rows[i + 1]
            assert nxt["data-flow"] == row["data-pair"] and nxt["data-pair"] == row["data-flow"], row
        if row["data-role"] == "never-sent":
            assert rows[i - 1]["data-flow"] == row["data-pair"], row


def test_waterfalls_group_preflights_before_their_requests(lab_html, tmp_path):
    doc = json_report(tmp_path)
    rows = parse(lab_html).rows
    grouped(rows)
    for page in doc["pages"]:
        mine = [r for r in rows if r["page"] == page["id"]]
        cross = [f for f in doc["flows"] if f["page"] == page["id"] and f["kind"] in ("preflight", "preflighted", "simple")]
        assert sorted(r["data-flow"] for r in mine if r["data-flow"]) == sorted(f["id"] for f in cross)
        never_sent = [f for f in cross if f["kind"] == "preflight" and f["never_sent"] and not f["pair"]]
        assert len([r for r in mine if r["data-role"] == "never-sent"]) == len(never_sent)
        blocked_rows = [r for r in mine if "blocked" in r["class"].split() and r["data-flow"]]
        assert len(blocked_rows) == len([f for f in cross if f["verdict"] == "blocked"])
        redundant_rows = [r for r in mine if "redundant" in r["class"].split()]
        assert len(redundant_rows) == page["redundant_preflights"]


def test_traffic_is_escaped_and_secrets_never_shown():
    evil = '"><script>alert(1)</script>'
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl"
    api_key = "sk_live_51H8xYzAbCdEf0123456789"
    pf = preflight(API + "/items?access_token=tok123&q=" + evil, headers="authorization,x-api-key",
                   response=allow(headers="authorization, x-api-key") + (("X-Note", evil),), start=1.0)
    req = exchange("PUT", API + "/items?access_token=tok123&q=" + evil,
                   [("Authorization", f"Bearer {jwt}"), ("X-Api-Key", api_key), ("Cookie", "sid=cookie-secret"),
                    ("X-Trace", f"v1 {api_key}")],
                   response=(("Access-Control-Allow-Origin", evil), ("Set-Cookie", "sid=set-cookie-secret")),
                   start=1.05)
    pages = [{"id": "p1", "title": APP + "/" + evil, "startedDateTime": "1970-01-01T00:00:00.5Z"}]
    pf.pageref = req.pageref = "p1"
    report = analyze([pf, req], get_engine("chromium"), pages=pages)
    html = render_html([HtmlSource("rec" + evil, report, [pf, req])])
    assert "<script" not in html.lower()
    assert "&lt;script&gt;" in html
    for secret in (jwt, api_key, "cookie-secret", "set-cookie-secret", "tok123", "51H8xYzAbCdEf0123456789"):
        assert secret not in html, secret
    assert "[redacted]" in html and "Cookie" in html and "Authorization" in html


def test_cli_html_format_and_suffix(tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main([str(MAXAGE), "-o", str(out)]) == 0
    html = out.read_text()
    assert html.startswith("<!doctype html>") and html.count('<svg class="waterfall"') == 2
    assert main([str(MAXAGE), "--format", "html"]) == 0
    assert capsys.readouterr().out == html


def test_live_addon_writes_the_html_report_on_exit(tmp_path):
    out = tmp_path / "live.html"
    addon = CorsAddon()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, cors_report=str(out))
        pf = make_flow("OPTIONS", API + "/items/1", {"Origin": APP, "Access-Control-Request-Method": "PUT"},
                       204, {"Access-Control-Allow-Origin": APP, "Access-Control-Allow-Methods": "PUT"}, 1.0)
        put = make_flow("PUT", API + "/items/1", {"Origin": APP, "Cookie": "sid=live-secret"}, 200,
                        {"Access-Control-Allow-Origin": APP}, 1.1)
        cycle(addon, pf)
        cycle(addon, put)
        addon.done()
        html = out.read_text()
        rows = parse(html).rows
        assert [r["data-role"] for r in rows] == ["preflight", "request"]
        grouped(rows)
        assert "Access-Control-Request-Method" in html and "live-secret" not in html
        assert all(f'data-what-if="{e}:{a}"' in html for e in ENGINES for a in AGES)
        command_out = tmp_path / "cmd.html"
        addon.report([pf, put], command_out)
        assert parse(command_out.read_text()).rows == rows


@pytest.mark.browser
def test_lab_report_in_chromium(lab_html, tmp_path):
    """Opened from disk: no request but the file itself, no console message of level
    error, a waterfall per page with preflights grouped, numbers as rendered."""
    require_browser(CHROMIUM)
    from playwright.sync_api import sync_playwright

    doc = json_report(tmp_path)
    lab_file = tmp_path / "lab.html"
    lab_file.write_text(lab_html)
    maxage_file = tmp_path / "maxage.html"
    recording = load_recording(str(MAXAGE))
    report = analyze(recording.exchanges, get_engine("chromium"), pages=recording.pages)
    maxage_file.write_text(render_html([HtmlSource("recordings/maxage-before/flows.har", report, recording.exchanges)]))
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1100, "height": 800})
        requests, problems = [], []
        page.on("request", lambda r: requests.append(r.url))
        page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        for path in (lab_file, maxage_file):
            page.goto(path.as_uri())
            page.wait_for_load_state("load")
        assert requests == [lab_file.as_uri(), maxage_file.as_uri()]
        assert problems == []

        page.goto(lab_file.as_uri())
        drawn = page.eval_on_selector_all("svg.waterfall", "els => els.map(e => e.dataset.page)")
        assert drawn == [p["id"] for p in doc["pages"]]
        rows = page.eval_on_selector_all("svg.waterfall g.row", """els => els.map(e => ({
            'data-role': e.dataset.role, 'data-flow': e.dataset.flow, 'data-pair': e.dataset.pair,
            visible: e.getBoundingClientRect().height > 0}))""")
        grouped(rows)
        assert all(r["visible"] for r in rows)
        shown = page.eval_on_selector_all("dl[data-total] [data-k]", "els => els.map(e => [e.dataset.k, e.textContent])")
        for key, text in shown:
            assert number(text) == doc["summary"][key]

        shot = tmp_path / "report.png"
        page.goto(maxage_file.as_uri())
        end = page.locator(".page").first.bounding_box()
        page.screenshot(path=str(shot), full_page=True, clip={"x": 0, "y": 0, "width": 1100, "height": end["y"] + end["height"]})
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        if os.environ.get("CORS_UPDATE_DOCS") == "1":
            (ROOT / "docs").mkdir(exist_ok=True)
            (ROOT / "docs/report.png").write_bytes(shot.read_bytes())
        browser.close()
