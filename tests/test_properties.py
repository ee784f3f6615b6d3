"""Property tests over the engine: any traffic, any header bytes, no exception, and the
report's books balance.

Exchanges come from small pools (a few URLs, origins and methods) so that preflights
and requests meet and pair, with arbitrary header names and values mixed in (non-ASCII,
control characters, lone surrogates as mitmproxy's ``surrogateescape`` produces them),
random statuses including 0, random timings including negative ones, and random
``Access-Control-Max-Age`` strings.
"""

from __future__ import annotations

import json
import math
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cors_addon.analyzer import Analyzer
from cors_addon.findings_book import MAX_FLOWS_PER_FINDING
from cors_addon.audit import analyze
from cors_addon.engines import ENGINES
from cors_addon.exchange import Exchange
from cors_addon.headers import Headers
from cors_addon.writers import render

HUNT = int(os.environ.get("CORS_PROPERTY_EXAMPLES", "0"))
SETTINGS = settings(max_examples=HUNT or 200, deadline=None, derandomize=not HUNT, database=None if not HUNT else
                    settings.default.database, suppress_health_check=[HealthCheck.too_slow])
"""200 fixed examples in CI (the same on every run: a red build is a change in the
engine, not the luck of the draw); ``CORS_PROPERTY_EXAMPLES=5000`` for a longer,
random hunt. Bugs found that way stay as regression cases at the end of this file."""
APP = "http://app.test"
URLS = [
    "http://api.test/a", "http://api.test/a?x=1", "http://api.test/a?_=1714557600", "http://api.test/items/123",
    "http://api.test/items/456", "https://api.test:8443/b", "http://app.test/page", "http://api.test/" + "l" * 1100,
    "not a url", "http://api.test:99999/", "http://u:p@api.test/c", "", "http://bücher.test/ü?q=😀",
]
ORIGINS = [APP, "http://other.app", "null", "http://api.test", "*", "", "http://app.test/"]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "get", "put", "QUERY"]
KINDS = {"preflight", "preflighted", "simple", "same-origin", "not-cors"}

# Arbitrary text: control characters, non-ASCII, format characters. Lone surrogates
# (what mitmproxy's surrogateescape gives for non-UTF-8 header bytes) have their own
# test below: the engine does not take them yet.
any_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
max_age = st.one_of(
    st.sampled_from(["600", "0", "-1", "7200", "86400", "1e9", "+5", " 5 ", "abc", "", "99999999999999999999",
                     "5, 10", "0x10", "٣"]),
    st.integers(-10**20, 10**20).map(str), any_text,
)
request_header = st.one_of(
    st.tuples(st.just("Origin"), st.one_of(st.sampled_from(ORIGINS), any_text)),
    st.tuples(st.sampled_from(["Access-Control-Request-Method", "access-control-request-method"]),
              st.one_of(st.sampled_from(METHODS), any_text)),
    st.tuples(st.just("Access-Control-Request-Headers"),
              st.one_of(st.sampled_from(["content-type", "authorization", "x-a, x-b", "X-A,,x-b", "*", ""]), any_text)),
    st.tuples(st.sampled_from(["Content-Type", "Authorization", "Cookie", "X-Custom", "Range", "Accept",
                               "Cache-Control", "Pragma", "Sec-Fetch-Mode", "Sec-Fetch-Site", "Referer",
                               ":authority", ":method", "DPR", "Save-Data"]),
              st.one_of(st.sampled_from(["application/json", "text/plain", "no-cache", "cors", "navigate",
                                         "bytes=0-1", APP + "/", "on", "2"]), any_text)),
    st.tuples(any_text, any_text),
)
response_header = st.one_of(
    st.tuples(st.sampled_from(["Access-Control-Allow-Origin", "access-control-allow-origin"]),
              st.one_of(st.sampled_from(ORIGINS), any_text)),
    st.tuples(st.just("Access-Control-Allow-Methods"),
              st.one_of(st.sampled_from(["PUT", "GET, POST, PUT, DELETE", "*", "put", "", "PUT,,"]), any_text)),
    st.tuples(st.just("Access-Control-Allow-Headers"),
              st.one_of(st.sampled_from(["content-type", "*", "authorization, x-custom", ""]), any_text)),
    st.tuples(st.just("Access-Control-Max-Age"), max_age),
    st.tuples(st.just("Access-Control-Allow-Credentials"), st.sampled_from(["true", "True", "false", ""])),
    st.tuples(st.sampled_from(["Location", "Vary", "Set-Cookie", ":status"]),
              st.one_of(st.sampled_from(["http://u:p@x.test/", "/next", "Origin"]), any_text)),
    st.tuples(any_text, any_text),
)
status = st.one_of(st.sampled_from([0, 200, 204, 301, 302, 304, 307, 308, 400, 401, 403, 404, 500]),
                   st.integers(0, 999))


@st.composite
def exchange_specs(draw, negative_times: bool):
    method = draw(st.sampled_from(METHODS))
    headers = draw(st.lists(request_header, max_size=6))
    if method == "OPTIONS" and draw(st.booleans()):
        headers.append(("Access-Control-Request-Method", draw(st.sampled_from(METHODS))))
    if draw(st.booleans()):
        headers.append(("Origin", draw(st.sampled_from(ORIGINS))))
    low = -5000.0 if negative_times else 0.0
    return {
        "method": method,
        "url": draw(st.sampled_from(URLS)),
        "headers": headers,
        "status": draw(status),
        "response": draw(st.lists(response_header, max_size=6)),
        "error": draw(st.sampled_from([None, None, "net::ERR_FAILED", "net::ERR_ABORTED"])),
        "started": draw(st.floats(0, 30, allow_nan=False)),
        "blocked": draw(st.floats(low / 10, 500, allow_nan=False)),
        "duration": draw(st.floats(low, 5000, allow_nan=False)),
    }


def traffic(negative_times=False):
    return st.lists(exchange_specs(negative_times), max_size=25)


def build(specs) -> list[Exchange]:
    out = []
    for i, s in enumerate(specs):
        started = s["started"]
        out.append(Exchange(
            id=f"x{i}", method=s["method"], url=s["url"], request_headers=Headers(s["headers"]),
            status=s["status"], response_headers=Headers(s["response"]), error=s["error"], started=started,
            wire_start=started + s["blocked"] / 1000, ended=started + s["duration"] / 1000,
            duration_ms=s["duration"], source_index=i,
        ))
    return out


def check_invariants(report, exchanges, *, times_non_negative=True):
    flows = report.flows
    by_id = {f.id: f for f in flows}
    n = len(exchanges)
    s = report.summary
    # every exchange gets exactly one result, and the counts add up
    assert len(flows) == n and len(by_id) == n
    assert s["exchanges"] == n == report.exchanges
    assert sum(report.kinds.values()) == n
    assert sum(p.requests for p in report.pages) == n
    assert s["preflights"] == report.kinds.get("preflight", 0) == sum(f.kind == "preflight" for f in flows)
    assert s["cross_origin_requests"] >= s["preflights"]
    # every preflight is paired at most once, and pairs are symmetric
    paired_to = {}
    for f in flows:
        assert f.kind in KINDS
        assert f.verdict in ("ok", "blocked", "unknown"), f
        if f.verdict == "blocked":
            assert f.message, f
        if f.pair is not None:
            other = by_id[f.pair]
            assert other.pair == f.id, (f, other)
            assert (f.kind == "preflight") != (other.kind == "preflight"), (f, other)
            paired_to.setdefault(f.pair, []).append(f.id)
    assert all(len(v) == 1 for v in paired_to.values())
    # redundant <= preflights, everywhere
    assert s["redundant_preflights"] == sum(f.redundant for f in flows) <= s["preflights"]
    assert all(f.kind == "preflight" for f in flows if f.redundant)
    for p in report.pages:
        assert 0 <= p.redundant_preflights <= p.preflights <= p.requests
        assert 0 <= p.blocked <= p.requests
        for slot in p.what_if.values():
            assert 0 <= slot["preflights_saved"] <= p.preflights
        if times_non_negative:
            assert p.avoidable_time_ms <= p.preflight_time_ms + 1e-6
    # blocked counts the failures a user sees: a blocked preflight paired with its
    # (never sent) request is counted once, on the request
    shown = [f for f in flows if f.verdict == "blocked" and not (f.kind == "preflight" and f.pair)]
    assert s["blocked"] == len(shown)
    for finding in report.findings:
        assert finding["count"] >= 1
        assert len(finding["flows"]) <= MAX_FLOWS_PER_FINDING
        assert set(finding["flows"]) <= set(by_id), finding
        assert finding["severity"] in ("error", "warning", "info")
    for value in (s["preflight_time_ms"], s["avoidable_time_ms"]):
        assert math.isfinite(value)


def render_all(report):
    doc = report.as_dict()
    json.dumps(doc, ensure_ascii=False)
    for fmt in ("table", "json", "markdown"):
        for show in (False, True):
            assert render([("p.har", report)], fmt, show_secrets=show)


@pytest.mark.parametrize("engine", sorted(ENGINES))
@SETTINGS
@given(specs=traffic())
def test_any_traffic_analyses_and_the_books_balance(engine, specs):
    exchanges = build(specs)
    report = analyze(exchanges, ENGINES[engine], what_if=[0, 600])
    check_invariants(report, exchanges)
    render_all(report)


@SETTINGS
@given(specs=traffic(negative_times=True), engine=st.sampled_from(sorted(ENGINES)))
def test_negative_timings_do_not_break_the_engine(specs, engine):
    exchanges = build(specs)
    report = analyze(exchanges, ENGINES[engine])
    check_invariants(report, exchanges, times_non_negative=False)


@SETTINGS
@given(specs=traffic(), data=st.data(), engine=st.sampled_from(sorted(ENGINES)))
def test_live_order_any_interleaving(specs, data, engine):
    """The addon's door: ``begin`` when a request leaves (maybe never), ``add`` when it
    completes, in whatever order the proxy sees them."""
    exchanges = build(specs)
    events = [("add", i) for i in range(len(exchanges))]
    events += [("begin", i) for i in range(len(exchanges)) if data.draw(st.booleans())]
    order = data.draw(st.permutations(events))
    added, analyzer = set(), Analyzer(ENGINES[engine], keep_flows=True)
    for kind, i in order:
        if kind == "begin" and i in added:
            continue  # a request cannot leave after its response arrived
        if kind == "add":
            added.add(i)
            analyzer.add(exchanges[i])
        else:
            analyzer.begin(exchanges[i])
    check_invariants(analyzer.finish(), exchanges, times_non_negative=True)


SURROGATE_IN_HEADER = [{"method": "GET", "url": "http://api.test/a", "status": 0, "response": [], "error": None,
                        "headers": [("Origin", APP), ("Content-Type", "\udce9")],
                        "started": 0.0, "blocked": 0.0, "duration": 0.0}]


BAD_IPV6_PREFLIGHT = [{"method": "OPTIONS", "url": "http://[::1/x", "status": 204, "response": [], "error": None,
                       "headers": [("Origin", APP), ("Access-Control-Request-Method", "PUT")],
                       "started": 0.0, "blocked": 0.0, "duration": 1.0}]


SAME_ORIGIN_PREFLIGHT = [
    {"method": "OPTIONS", "url": "http://api.test/a", "status": 0, "response": [], "error": None,
     "headers": [("Access-Control-Request-Method", "GET"), ("Origin", "http://api.test")],
     "started": 0.0, "blocked": 0.0, "duration": 0.0},
    {"method": "GET", "url": "http://api.test/a", "status": 0, "response": [], "error": None, "headers": [],
     "started": 0.0, "blocked": 0.0, "duration": 0.0},
]


@pytest.mark.parametrize("traffic", [SURROGATE_IN_HEADER, BAD_IPV6_PREFLIGHT, SAME_ORIGIN_PREFLIGHT],
                         ids=["lone-surrogate-in-a-header", "preflight-to-an-unparsable-url",
                              "preflight-paired-with-a-same-origin-request"])
def test_engine_bugs_the_random_hunt_found_stay_fixed(traffic):
    exchanges = build(traffic)
    check_invariants(analyze(exchanges, ENGINES["chromium"]), exchanges)


# -- the HAR reader: any JSON in any field --------------------------------------------

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                      st.text(st.characters(exclude_categories=()), max_size=12))
json_any = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)), max_leaves=12)


def maybe(good):
    """Mostly a plausible value, sometimes any JSON at all."""
    return st.one_of(good, good, good, json_any)


har_header = maybe(st.fixed_dictionaries({"name": maybe(st.sampled_from(
    ["Origin", "Access-Control-Request-Method", "Access-Control-Allow-Origin", "Access-Control-Max-Age",
     ":method", "Content-Type", "Cookie", "Sec-Fetch-Mode"])), "value": maybe(st.one_of(
    st.sampled_from([APP, "PUT", "GET", "600", "*", "cors", "application/json"]), any_text))}))
har_entry = maybe(st.fixed_dictionaries({
    "startedDateTime": maybe(st.sampled_from(["2024-05-01T10:00:00.000Z", "2024-05-01T10:00:00.010+02:00",
                                              "2024-05-01T10:00:01Z", "2024-05-01T10:00:00.1234567Z"])),
    "time": maybe(st.floats(-5, 5000, allow_nan=False)),
    "request": maybe(st.fixed_dictionaries({
        "method": maybe(st.sampled_from(METHODS)), "url": maybe(st.sampled_from(URLS)),
        "headers": maybe(st.lists(har_header, max_size=5))})),
    "response": maybe(st.fixed_dictionaries({
        "status": maybe(status), "headers": maybe(st.lists(har_header, max_size=5)),
        "_error": maybe(st.sampled_from([None, "net::ERR_FAILED"]))})),
    "timings": maybe(st.fixed_dictionaries({"blocked": maybe(st.floats(-1, 100)), "wait": maybe(st.floats(-1, 100))})),
    "pageref": maybe(st.sampled_from(["page_1", "page_2"])),
}))
har_doc = st.fixed_dictionaries({"log": maybe(st.fixed_dictionaries({
    "pages": maybe(st.lists(maybe(st.fixed_dictionaries({"id": maybe(st.sampled_from(["page_1", "page_2"])),
                                                          "title": maybe(any_text)})), max_size=2)),
    "entries": maybe(st.lists(har_entry, max_size=8)),
}))})


@SETTINGS
@given(doc=har_doc)
def test_any_har_json_is_read_analysed_and_annotated_losslessly(doc):
    """Whatever JSON sits in whatever field: a RecordingError for the whole file, or
    exchanges (bad entries skipped) that analyse, render and annotate losslessly."""
    import copy

    from cors_addon.errors import RecordingError
    from cors_addon.sources.har import read_har_data
    from cors_addon.writers.har_annotate import annotate_har

    original = json.dumps(doc, allow_nan=True)
    try:
        har = read_har_data("x.har", doc)
    except RecordingError as exc:
        assert str(exc).startswith("x.har: ")
        return
    report = analyze(har.exchanges, ENGINES["chromium"], pages=har.pages)
    check_invariants(report, har.exchanges)
    render_all(report)
    annotated = annotate_har(copy.deepcopy(doc), report)
    annotated["log"].pop("_corsSummary")
    for entry in annotated["log"]["entries"]:
        if isinstance(entry, dict):
            entry.pop("_cors", None)
    assert json.dumps(annotated, allow_nan=True) == original
