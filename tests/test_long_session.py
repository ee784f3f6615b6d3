"""An hour of live traffic: state stays bounded and no count is lost.

100,000 flows over 3,600 s of timestamps are fed the way the addon feeds them (page
assigned and ``begin`` when a request leaves, ``add`` when it completes), into an
``Analyzer(keep_flows=False)``. Every 10,000 flows the size of each piece of state is
sampled; at the end the report's totals must equal an independent count of what was
generated.
"""

from __future__ import annotations

import random
import time
from collections import Counter

from cors_addon.analyzer import Analyzer
from cors_addon.findings_book import MAX_FLOWS_PER_FINDING
from cors_addon.engines import get_engine
from cors_addon.exchange import Exchange
from cors_addon.headers import Headers
from cors_addon.pages import MAX_REMEMBERED_URLS, PageTracker

FLOWS = 100_000
SECONDS = 3600.0
APP = "https://app.test"
HOSTS = [f"https://api{i}.test" for i in range(40)]
ORIGINS = [APP] + [f"https://tenant{i}.app.test" for i in range(60)]
NAVIGATE_EVERY = 800
"""One navigation per 800 flows: 125 page loads in the hour."""


def _ex(n, method, url, headers, status, response, t, duration_ms=20.0):
    return Exchange(id=f"f{n}", method=method, url=url, request_headers=Headers(headers), status=status,
                    response_headers=Headers(response), started=t, wire_start=t, ended=t + duration_ms / 1000,
                    duration_ms=duration_ms, source_index=n)


def generate(seed=7):
    """(events, expected): events are ("begin"|"add", exchange) in live order."""
    rng = random.Random(seed)
    events, expected = [], Counter()
    n, step = 0, SECONDS / FLOWS
    while n < FLOWS:
        t = n * step
        host = rng.choice(HOSTS)
        origin = rng.choice(ORIGINS)
        cors = [("Origin", origin), ("Sec-Fetch-Mode", "cors"), ("Referer", APP + "/")]
        ok = [("Access-Control-Allow-Origin", origin)]
        kind = rng.randrange(10)
        if n % NAVIGATE_EVERY == 0:
            ex = _ex(n, "GET", f"{APP}/page/{n}", [("Sec-Fetch-Dest", "document"), ("Sec-Fetch-Mode", "navigate")],
                     200, [], t)
            events += [("begin", ex), ("add", ex)]
            expected["not-cors"] += 1
            expected["navigations"] += 1
            n += 1
        elif kind <= 3:  # a simple GET, allowed; ids in the path so URLs keep changing
            ex = _ex(n, "GET", f"{host}/items/{rng.randrange(100_000)}", cors, 200, ok, t)
            events += [("begin", ex), ("add", ex)]
            expected["simple"] += 1
            n += 1
        elif kind == 4:  # a simple GET the server forgot to allow
            ex = _ex(n, "GET", f"{host}/feed?page={rng.randrange(1000)}", cors, 200, [], t)
            events += [("begin", ex), ("add", ex)]
            expected["simple"] += 1
            expected["blocked"] += 1
            n += 1
        elif kind <= 6 and n + 1 < FLOWS:  # preflight (Max-Age 0..600) + PUT
            url = f"{host}/items/{rng.randrange(2000)}"
            age = rng.choice(["", "0", "5", "600", "abc"])
            answer = ok + [("Access-Control-Allow-Methods", "PUT")] + ([("Access-Control-Max-Age", age)] if age else [])
            pf = _ex(n, "OPTIONS", url, cors + [("Access-Control-Request-Method", "PUT")], 204, answer, t, 15.0)
            put = _ex(n + 1, "PUT", url, cors, 200, ok, t + 0.02)
            events += [("add", pf), ("begin", put), ("add", put)]
            expected["preflight"] += 1
            expected["preflighted"] += 1
            expected["pairs"] += 1
            n += 2
        elif kind == 7:  # a preflight without Allow-Origin: the DELETE is never sent
            url = f"{host}/items/{rng.randrange(2000)}"
            pf = _ex(n, "OPTIONS", url, cors + [("Access-Control-Request-Method", "DELETE")], 204, [], t, 15.0)
            events.append(("add", pf))
            expected["preflight"] += 1
            expected["blocked"] += 1
            n += 1
        elif kind == 8:  # same-origin
            ex = _ex(n, "GET", f"{APP}/api/me", [("Origin", APP), ("Sec-Fetch-Mode", "cors")], 200, [], t)
            events += [("begin", ex), ("add", ex)]
            expected["same-origin"] += 1
            n += 1
        else:  # an image: no Origin, not CORS
            ex = _ex(n, "GET", f"{host}/img/{n}.png", [("Sec-Fetch-Mode", "no-cors")], 200, [], t)
            events += [("begin", ex), ("add", ex)]
            expected["not-cors"] += 1
            n += 1
    expected["exchanges"] = n
    return events, expected


def state_sizes(a: Analyzer) -> dict[str, int]:
    findings = list(a.findings.values())
    return {
        "pending": sum(len(v) for v in a.pairing.pending.values()),
        "pending_order": len(a.pairing.order),
        "paired": len(a.pairing.paired),
        "recent": len(a.redundancy._recent),
        "templates": len(a.redundancy._templates),
        "cache": len(a.cache._entries),
        "answers": len(a.redundancy.answers._entries),
        "what_if": max((len(c._entries) for _, c in a.redundancy.what_if.values()), default=0),
        "flows": len(a.flows),
        "findings": len(findings),
        "finding_flows": max((len(f.flows) for f in findings), default=0),
        "finding_origins": max((len(f.origins) for f in findings), default=0),
        "cors_targets": len(a.cors_targets),
        "pages": len(a.pages.pages),
        "page_urls": len(a.pages._by_url),
    }


def test_an_hour_of_traffic_stays_bounded_and_loses_no_count():
    events, expected = generate()
    engine = get_engine("chromium")
    tracker = PageTracker()
    analyzer = Analyzer(engine, keep_flows=False, pages=tracker)
    peak: Counter = Counter()
    added = 0
    started = time.perf_counter()
    for kind, ex in events:
        if kind == "begin":
            tracker.assign(ex)
            analyzer.begin(ex)
            continue
        if ex.page is None:
            tracker.assign(ex)
        analyzer.add(ex)
        added += 1
        if added % 10_000 == 0:
            for key, size in state_sizes(analyzer).items():
                peak[key] = max(peak[key], size)
    report = analyzer.finish()
    elapsed = time.perf_counter() - started
    for key, size in state_sizes(analyzer).items():
        peak[key] = max(peak[key], size)
    print(f"\n{expected['exchanges']} flows in {elapsed:.1f} s; peak state: {dict(peak)}")

    # bounded: nothing grows with the number of flows
    assert peak["pending"] <= 500 and peak["pending_order"] <= 500
    assert peak["paired"] <= 10
    assert peak["recent"] <= 4096 and peak["templates"] <= 4096
    assert peak["cache"] <= engine.max_entries and peak["what_if"] <= engine.max_entries
    assert peak["answers"] <= 4096
    assert peak["flows"] == 0
    assert peak["finding_flows"] <= MAX_FLOWS_PER_FINDING
    assert peak["page_urls"] <= MAX_REMEMBERED_URLS
    # these grow with what the traffic holds, not with its volume
    assert peak["findings"] <= 12 * len(HOSTS)
    assert peak["finding_origins"] <= len(ORIGINS)
    assert peak["cors_targets"] <= len(HOSTS) + 1
    assert peak["pages"] == expected["navigations"]

    # no lost counts
    s = report.summary
    assert s["exchanges"] == expected["exchanges"] == FLOWS
    for kind in ("preflight", "preflighted", "simple", "same-origin", "not-cors"):
        assert s["kinds"].get(kind, 0) == expected[kind], kind
    assert s["preflights"] == expected["preflight"]
    assert s["blocked"] == expected["blocked"]
    assert s["cross_origin_requests"] == expected["preflight"] + expected["preflighted"] + expected["simple"]
    assert sum(p.requests for p in report.pages) == FLOWS
    assert s["redundant_preflights"] <= s["preflights"]
    assert sum(f["count"] for f in report.findings if f["severity"] == "error") == expected["blocked"]
