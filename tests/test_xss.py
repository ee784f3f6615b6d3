"""Reports escape everything that came from traffic.

A recording whose URLs, header values, status text, ``_error`` and page title carry
``<script>``, attribute breakouts, ``javascript:`` links and Markdown link/image/table
syntax is audited; the HTML report (as written, and again with its CSP removed, so that
escaping alone is tested) and the Markdown report (rendered to HTML when a Markdown
renderer is installed) are opened in real headless Chromium: no script runs, nothing is
fetched, no element or attribute comes from traffic. The raw Markdown is checked too.
"""

from __future__ import annotations

import json
import re

import pytest

from cors_addon.audit import analyze
from cors_addon.engines import get_engine
from cors_addon.sources.load import load_recording
from cors_addon.writers import FORMATS, render
from tests.conftest import CHROMIUM, require_browser

APP, API = "http://app.test", "http://api.test"
SCRIPT = "<script>window.__xss=1</script>"
IMG = '"><img src=x onerror="window.__xss=1">'
SVG = "<svg onload=window.__xss=1>"
MD_LINK = "[x](javascript:alert(1))"
MD_IMG = "![](http://evil/x.png)"
TICKS = "`<img src=x onerror=window.__xss=1>`"
ROW = "x\n| injected | row |\n" + SCRIPT
PIPES = "a | b | <b>c</b>"
T0 = "2024-05-01T10:00:0{}.000Z"


def _entry(method, url, req, status, resp, second, **extra):
    response = {"status": status, "statusText": SCRIPT + IMG, "httpVersion": "HTTP/1.1",
                "headers": [{"name": k, "value": v} for k, v in resp], "cookies": [],
                "content": {"size": 0, "mimeType": SCRIPT}, "redirectURL": "", "headersSize": -1, "bodySize": 0}
    response.update(extra.pop("response", {}))
    return {
        "pageref": "page_1", "startedDateTime": T0.format(second), "time": 20,
        "request": {"method": method, "url": url, "httpVersion": "HTTP/1.1", "cookies": [], "queryString": [],
                    "headers": [{"name": k, "value": v} for k, v in req], "headersSize": -1, "bodySize": 0},
        "response": response, "cache": {}, "timings": {"send": 1, "wait": 18, "receive": 1}, **extra,
    }


def hostile_har() -> dict:
    cors = [("Sec-Fetch-Mode", "cors"), ("Referer", APP + "/")]
    evil_url = f"{API}/{SCRIPT}/{IMG}?q={MD_LINK}&img={MD_IMG}&t={TICKS}&p={PIPES}"
    entries = [
        # a preflight whose answer is all markup: InvalidAllowOriginValue, parameter = SCRIPT
        _entry("OPTIONS", evil_url, cors + [("Origin", APP), ("Access-Control-Request-Method", "PUT"),
                                            ("Access-Control-Request-Headers", f"x-a, {SCRIPT}")], 204,
               [("Access-Control-Allow-Origin", SCRIPT), ("Access-Control-Allow-Headers", IMG),
                ("Access-Control-Allow-Methods", MD_LINK), ("Access-Control-Max-Age", SVG)], 0),
        _entry("PUT", evil_url, cors + [("Origin", APP)], 0, [], 0, response={"_error": "net::ERR_FAILED" + SCRIPT}),
        # the Origin itself is markup; it lands in findings' fixes
        _entry("GET", f"{API}/b?{MD_IMG}", cors + [("Origin", APP + IMG + TICKS)], 200,
               [("Access-Control-Allow-Origin", APP)], 1),
        _entry("GET", f"{API}/c", cors + [("Origin", ROW)], 200, [("Access-Control-Allow-Origin", PIPES)], 2),
        # a redirect to javascript:, and a failure whose error text is markup
        _entry("GET", f"{API}/d", cors + [("Origin", APP)], 302,
               [("Access-Control-Allow-Origin", APP), ("Location", "javascript:window.__xss=1//" + SCRIPT)], 3),
        _entry("OPTIONS", f"{API}/e", cors + [("Origin", APP), ("Access-Control-Request-Method", "DELETE")], 0, [], 4,
               response={"_error": SCRIPT + IMG}),
        _entry("GET", f"http://evil{IMG}.test/{SVG}", cors + [("Origin", APP)], 200, [], 5),
    ]
    return {"log": {"version": "1.2", "creator": {"name": SCRIPT, "version": IMG},
                    "pages": [{"startedDateTime": T0.format(0), "id": "page_1", "title": SCRIPT + IMG + MD_LINK + MD_IMG,
                               "pageTimings": {}}],
                    "entries": entries}}


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    path = tmp_path_factory.mktemp("xss") / f"rec{SCRIPT}.har".replace("/", "_")
    path.write_text(json.dumps(hostile_har()), encoding="utf-8")
    recording = load_recording(str(path))
    assert not recording.warnings
    report = analyze(recording.exchanges, get_engine("chromium"), pages=recording.pages)
    assert report.summary["blocked"] >= 3
    out = {}
    for fmt in FORMATS:
        for show in (False, True):
            out[fmt, show] = render([(str(path), report)], fmt, [recording.exchanges], show_secrets=show)
    return out


def test_traffic_reached_the_reports(reports):
    """Otherwise the rest proves nothing: the markup is in the reports, as text."""
    for show in (False, True):
        assert "window.__xss=1" in reports["json", show]
        assert "window.__xss=1" in reports["markdown", show]
        assert "window.__xss" in reports["table", show]
        if ("html", show) in reports:
            assert "window.__xss" in reports["html", show]


def test_json_stays_json(reports):
    for show in (False, True):
        doc = json.loads(reports["json", show])
        assert any(SCRIPT in (f["failed_parameter"] or "") for f in doc["flows"])


def _outside_code_spans(line: str) -> str:
    """The line with every CommonMark code span removed (a run of n backticks up to
    the next run of exactly n)."""
    out, i = [], 0
    while i < len(line):
        if line[i] == "`":
            n = len(line[i:]) - len(line[i:].lstrip("`"))
            close = re.compile(r"(?<!`)" + "`" * n + r"(?!`)").search(line, i + n)
            if close:
                i = close.end()
                continue
            out.append(line[i:i + n])
            i += n
            continue
        out.append(line[i])
        i += 1
    return "".join(out)


def _cells(line: str) -> int:
    """Cell separators GFM sees: pipes not escaped with a backslash, code spans or not."""
    return len(re.findall(r"(?<!\\)\|", line))


@pytest.mark.parametrize("show", [False, True], ids=["redacted", "show-secrets"])
def test_markdown_source_has_no_markup_from_traffic(reports, show):
    text = reports["markdown", show]
    lines = text.splitlines()
    table_width = None
    for line in lines:
        plain = _outside_code_spans(line)
        assert "<" not in plain and ">" not in plain, line
        assert not re.search(r"(?<!\\)\]\(|(?<!\\)!\[|(?<!\\)\[", plain), line
        assert "javascript:" not in plain.lower(), line
        if line.startswith("|"):
            if re.fullmatch(r"\|(?:-+:?\|)+", line.replace("---:", "---")):
                continue
            if table_width is None or line.startswith("| page") or line.startswith("| severity"):
                table_width = _cells(line)
            assert _cells(line) == table_width, f"a value added table cells: {line}"
        else:
            table_width = None
        assert not line.startswith(("| injected", "<script")), line
    # every value from traffic sits inside a code span; none escaped one
    assert all(line.count("`") % 2 == 0 for line in lines), text


def _markdown_to_html(text: str) -> str | None:
    try:
        from markdown_it import MarkdownIt
    except ImportError:
        pass
    else:
        return MarkdownIt("commonmark", {"html": True}).enable("table").render(text)
    try:
        import markdown
    except ImportError:
        return None
    return markdown.markdown(text, extensions=["tables"])


DOM_CHECK = """() => {
    const all = [...document.querySelectorAll('*')];
    return {
        xss: typeof window.__xss,
        scripts: document.querySelectorAll('script').length,
        imgs: document.querySelectorAll('img, iframe, object, embed, video, audio').length,
        handlers: all.filter(e => [...e.attributes].some(a => a.name.toLowerCase().startsWith('on'))).map(e => e.outerHTML.slice(0, 200)),
        jsLinks: [...document.querySelectorAll('[href], [src], [action], [formaction]')]
            .filter(e => /^\\s*javascript:/i.test(e.getAttribute('href') || e.getAttribute('src') || e.getAttribute('action') || e.getAttribute('formaction') || ''))
            .map(e => e.outerHTML.slice(0, 200)),
        text: document.body ? document.body.innerText : '',
    };
}"""


def _documents(reports, tmp_path):
    docs = []
    for show in (False, True):
        tag = "shown" if show else "redacted"
        html = reports.get(("html", show))
        if html is not None:
            docs.append((f"html-{tag}", html, True))
            no_csp = re.sub(r"<meta[^>]+http-equiv=[\"']?Content-Security-Policy[^>]*>", "", html, flags=re.I)
            docs.append((f"html-{tag}-without-csp", no_csp, False))
        rendered = _markdown_to_html(reports["markdown", show])
        if rendered is not None:
            docs.append((f"markdown-{tag}", f"<!doctype html><meta charset=utf-8><body>{rendered}</body>", False))
    paths = []
    for name, html, _ in docs:
        path = tmp_path / f"{name}.html"
        path.write_text(html, encoding="utf-8")
        paths.append((name, path))
    return paths


@pytest.mark.browser
def test_no_script_runs_in_chromium(reports, tmp_path):
    require_browser(CHROMIUM)
    if ("html", False) not in reports:
        pytest.skip("this build has no html report format")
    from playwright.sync_api import sync_playwright

    documents = _documents(reports, tmp_path)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        try:
            page = browser.new_page()
            requests, dialogs, errors = [], [], []
            page.on("request", lambda r: requests.append(r.url))
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.on("pageerror", lambda e: errors.append(str(e)))
            for name, path in documents:
                requests.clear()
                page.goto(path.as_uri())
                page.wait_for_load_state("load")
                page.wait_for_timeout(100)
                state = page.evaluate(DOM_CHECK)
                assert requests == [path.as_uri()], f"{name}: fetched {requests}"
                assert state["xss"] == "undefined", name
                assert state["scripts"] == 0 and state["imgs"] == 0, (name, state)
                assert state["handlers"] == [] and state["jsLinks"] == [], (name, state)
                assert "window.__xss" in state["text"], f"{name}: the markup should be shown as text"
                assert dialogs == [] and errors == [], (name, dialogs, errors)
        finally:
            browser.close()
    assert any(name.startswith("html") for name, _ in documents)


def test_a_markdown_renderer_is_installed_so_markdown_is_checked_rendered():
    """The Chromium check renders the Markdown report only when a renderer is there
    (markdown-it-py, a test dependency); without one the rendered half would pass
    unseen, so its absence is a failure, not a skip."""
    assert _markdown_to_html("*x*") is not None, "install the test dependencies: pip install -e '.[test]'"