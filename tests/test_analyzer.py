"""Pairing, verdicts, redundancy causes, pages and what-if, on hand-built traffic."""

from cors_addon.audit import analyze
from cors_addon.engines import CHROMIUM, FIREFOX
from tests.builders import API, APP, allow, exchange, preflight

URL = API + "/items/1"


def run(exchanges, engine=CHROMIUM, **kw):
    return analyze(exchanges, engine, **kw)


def flows(report):
    return {f.id: f for f in report.flows}


def test_preflight_pairs_with_the_request_it_authorised():
    p = preflight(URL, "PUT", "content-type", allow("PUT", "Content-Type"), start=0)
    a = exchange("PUT", URL, [("Content-Type", "application/json")], 200, allow(), start=0.03)
    other = exchange("PUT", API + "/items/2", [("Content-Type", "application/json")], 200, allow(), start=0.03)
    r = flows(run([p, a, other]))
    assert r[p.id].pair == a.id and r[a.id].pair == p.id
    assert r[a.id].kind == "preflighted" and r[p.id].kind == "preflight"
    assert r[p.id].requested == {"method": "PUT", "headers": ["content-type"]}
    assert r[other.id].pair is None


def test_long_request_still_pairs_with_its_preflight():
    """Pairing happens when the request starts, not when its (long) response ends."""
    p = preflight(URL, "GET", "authorization", allow("GET", "Authorization"), start=0)
    a = exchange("GET", URL, [("Authorization", "x")], 200, allow(), start=0.05, duration_ms=30_000)
    later = [exchange("GET", API + f"/other/{i}", start=1 + i, response=allow()) for i in range(10)]
    r = flows(run([p, a, *later]))
    assert r[a.id].pair == p.id


def test_failed_preflight_without_follow_up_is_blocked_and_never_sent():
    p = preflight(URL, "PUT", "", response=(), status=404)
    report = run([p])
    f = flows(report)[p.id]
    assert (f.verdict, f.cors_error, f.never_sent, f.pair) == ("blocked", "PreflightMissingAllowOriginHeader", True, None)
    assert report.summary["blocked"] == 1
    assert report.findings[0]["id"] == "PreflightMissingAllowOriginHeader"
    assert report.findings[0]["fix"]["header"] == f"Access-Control-Allow-Origin: {APP}"


def test_credentials_mode_decides_and_is_named():
    """ACAO * passes without credentials; with no follow-up, the include mode failed."""
    p = preflight(URL, "PUT", "", response=(("Access-Control-Allow-Origin", "*"), ("Access-Control-Allow-Methods", "PUT")))
    seen = exchange("GET", API + "/simple", start=0.5, response=(("Access-Control-Allow-Origin", "*"),))
    f = flows(run([p, seen]))[p.id]
    assert f.verdict == "blocked" and f.cors_error == "PreflightWildcardOriginNotAllowed"
    assert f.credentials == "include"
    a = exchange("PUT", URL, [("Cookie", "s=1")], 200, (("Access-Control-Allow-Origin", "*"),), start=0.03)
    p2 = preflight(URL, "PUT", "", response=allow("PUT"))
    r = flows(run([p2, a]))
    assert r[a.id].credentials == "include" and r[a.id].cors_error == "WildcardOriginNotAllowed"


def test_simple_request_blocked_on_the_response_but_fully_sent():
    a = exchange("GET", URL, start=0, response=(("Access-Control-Allow-Origin", "http://other.test"),))
    f = flows(run([a]))[a.id]
    assert (f.kind, f.verdict, f.cors_error, f.failed_parameter, f.never_sent) == (
        "simple", "blocked", "AllowOriginMismatch", "http://other.test", False)


def test_same_origin_and_no_cors_are_not_judged():
    same = exchange("POST", APP + "/x", [("Content-Type", "application/json")], origin=APP)
    same.url = APP + "/x"
    beacon = exchange("POST", URL, [("Sec-Fetch-Mode", "no-cors")], response=())
    r = flows(run([same, beacon]))
    assert r[same.id].kind == "same-origin" and r[beacon.id].kind == "not-cors"
    assert r[beacon.id].verdict == "ok"


def _repeat(max_age, gap, engine=CHROMIUM, extra=()):
    answer = allow("PUT", "Content-Type", max_age)
    seq = []
    for i, start in enumerate((0, gap)):
        seq.append(preflight(URL, "PUT", "content-type", answer, start=start, extra=extra))
        seq.append(exchange("PUT", URL, [("Content-Type", "application/json")], 200, allow(), start=start + 0.03))
    report = run(seq, engine)
    return report, flows(report)[seq[2].id]


def test_redundant_causes_from_max_age():
    assert _repeat(None, 6)[1].cause == "no-max-age"
    assert _repeat(2, 3)[1].cause == "max-age-too-small"
    assert _repeat(0, 1)[1].cause == "max-age-zero"
    assert _repeat(-1, 1)[1].cause == "max-age-negative"
    assert _repeat("abc", 6)[1].cause == "max-age-invalid"
    assert _repeat(86400, 7300)[1].cause == "max-age-above-cap"
    report, second = _repeat(None, 6)
    assert second.redundant and report.summary["redundant_preflights"] == 1
    assert report.pages[0].avoidable_time_ms == second.duration_ms


def test_engines_disagree_on_max_age():
    assert _repeat("+3", 6)[1].cause == "max-age-too-small"
    assert _repeat("+3", 2)[1].cause == "repeat-within-max-age"
    assert _repeat("+3", 2, FIREFOX)[1].cause == "max-age-invalid"
    assert _repeat(86400, 7300, FIREFOX)[1].cause == "repeat-within-max-age"


def test_cache_bypass_is_not_the_servers_fault():
    _, second = _repeat(600, 2, extra=[("Cache-Control", "no-cache"), ("Pragma", "no-cache")])
    assert second.cause == "cache-bypassed"


def test_no_repeat_within_max_age_is_not_redundant():
    report, _ = _repeat(600, 2)
    assert report.summary["redundant_preflights"] == 1  # a second OPTIONS was sent anyway
    seq = [preflight(URL, "PUT", "", allow("PUT", max_age=600)), exchange("PUT", URL, start=0.03, response=allow()),
           exchange("PUT", URL, start=2, response=allow())]
    report = run(seq)
    cached = flows(report)[seq[2].id]
    assert cached.cache_hit and cached.kind == "preflighted" and report.summary["redundant_preflights"] == 0


def test_wildcard_with_authorization_repreflights_in_chromium():
    answer = (("Access-Control-Allow-Origin", "*"), ("Access-Control-Allow-Methods", "GET"),
              ("Access-Control-Allow-Headers", "*"), ("Access-Control-Max-Age", "600"))
    seq = []
    for start in (0, 1):
        seq.append(preflight(URL, "GET", "authorization", answer, start=start))
        seq.append(exchange("GET", URL, [("Authorization", "Bearer x")], 200, answer, start=start + 0.03))
    assert flows(run(seq))[seq[2].id].cause == "wildcard-authorization"


def test_chromium_entry_replacement_by_echoing_server():
    seq = []
    for i, method in enumerate(("PUT", "DELETE", "PUT")):
        seq.append(preflight(URL, method, "", allow(method, max_age=600), start=i))
        seq.append(exchange(method, URL, start=i + 0.03, response=allow()))
    assert flows(run(seq))[seq[4].id].cause == "entry-replaced"
    assert not flows(run(seq, FIREFOX))[seq[4].id].redundant or flows(run(seq, FIREFOX))[seq[4].id].cause != "entry-replaced"


def test_parallel_identical_preflights_get_their_own_finding():
    answer = allow("PUT", max_age=600)
    seq = [preflight(URL, "PUT", "", answer, start=0, duration_ms=50), preflight(URL, "PUT", "", answer, start=0.01, duration_ms=50),
           exchange("PUT", URL, start=0.06, response=allow()), exchange("PUT", URL, start=0.07, response=allow())]
    report = run(seq)
    assert report.summary["redundant_preflights"] == 0
    assert [f["id"] for f in report.findings] == ["parallel-preflights"]


def test_per_url_keys_and_cache_busting():
    answer = allow("PUT", max_age=600)
    seq = [preflight(API + "/items/1", "PUT", "", answer, start=0), exchange("PUT", API + "/items/1", start=0.03, response=allow()),
           preflight(API + "/items/2", "PUT", "", answer, start=1), exchange("PUT", API + "/items/2", start=1.03, response=allow()),
           preflight(API + "/q?_=1", "PUT", "", answer, start=2), exchange("PUT", API + "/q?_=1", start=2.03, response=allow()),
           preflight(API + "/q?_=2", "PUT", "", answer, start=3), exchange("PUT", API + "/q?_=2", start=3.03, response=allow())]
    ids = sorted(f["id"] for f in run(seq).findings)
    assert ids == ["cache-busting-parameter", "per-url-cache-key"]


def test_pages_from_navigations_and_referer():
    nav1 = exchange("GET", APP + "/one", [("Sec-Fetch-Dest", "document"), ("Sec-Fetch-Mode", "navigate")], origin=None, start=0)
    nav1.url = APP + "/one"
    p1 = preflight(URL, "PUT", "", allow("PUT"), start=1, extra=[("Referer", APP + "/one")])
    a1 = exchange("PUT", URL, [("Referer", APP + "/one")], start=1.03, response=allow())
    nav2 = exchange("GET", APP + "/two", [("Sec-Fetch-Dest", "document"), ("Sec-Fetch-Mode", "navigate")], origin=None, start=10)
    nav2.url = APP + "/two"
    p2 = preflight(URL, "PUT", "", allow("PUT"), start=11, extra=[("Referer", APP + "/two")])
    a2 = exchange("PUT", URL, [("Referer", APP + "/two")], start=11.03, response=allow())
    report = run([nav1, p1, a1, nav2, p2, a2])
    assert [(p.url, p.requests, p.preflights, p.redundant_preflights) for p in report.pages] == [
        (APP + "/one", 3, 1, 0), (APP + "/two", 3, 1, 1)]


def test_what_if_max_age_replays_the_cache():
    seq = []
    for start in (0, 10, 20, 30):
        seq.append(preflight(URL, "PUT", "", allow("PUT"), start=start))
        seq.append(exchange("PUT", URL, start=start + 0.03, response=allow()))
    report = run(seq, what_if=[15])
    w = report.summary["what_if"]
    assert w["max_age_15"]["preflights_saved"] == 2      # 10 (from 0) and 30 (from 20)
    assert w["max_age_7200"]["preflights_saved"] == 3
    assert report.summary["redundant_preflights"] == 3


def test_security_findings_are_credential_aware():
    https_api = "https://api.test/me"
    seq = []
    for i, origin in enumerate(("https://a.test", "https://b.test")):
        seq.append(exchange("GET", https_api, start=i, origin=origin,
                            response=(("Access-Control-Allow-Origin", origin), ("Access-Control-Allow-Credentials", "true"))))
    seq.append(exchange("GET", https_api + "?n", start=3, origin="null", response=(("Access-Control-Allow-Origin", "null"),)))
    seq.append(exchange("GET", https_api + "?h", start=4, origin="http://app.test",
                        response=(("Access-Control-Allow-Origin", "http://app.test"), ("Vary", "Origin"))))
    found = {(f["id"], f["severity"]) for f in run(seq).findings}
    assert ("origin-reflected-credentials", "error") in found
    assert ("null-origin-allowed", "warning") in found
    assert ("insecure-origin-trusted", "warning") in found
    assert ("missing-vary-origin-credentials", "error") in found


def test_a_fixed_allow_origin_is_not_a_finding():
    seq = [exchange("GET", URL, start=i, response=(("Access-Control-Allow-Origin", APP),)) for i in range(3)]
    assert run(seq).findings == []


def test_what_if_never_counts_repeats_the_real_answer_covered():
    seq = []
    for start in (0, 2):
        seq.append(preflight(URL, "PUT", "", allow("PUT", max_age=600), start=start))
        seq.append(exchange("PUT", URL, start=start + 0.03, response=allow()))
    report = run(seq)
    assert report.summary["redundant_preflights"] == 1
    assert report.summary["what_if"]["max_age_7200"]["preflights_saved"] == 0


def test_chrome_preflight_marker_counts_without_request_method():
    p = preflight(URL, "PUT", "", allow("PUT"))
    p.request_headers = type(p.request_headers)([("Origin", APP)])
    p.resource_type = "preflight"
    assert flows(run([p]))[p.id].kind == "preflight"


def test_analysing_the_same_exchanges_twice_gives_the_same_pages():
    nav = exchange("GET", APP + "/one", [("Sec-Fetch-Dest", "document"), ("Sec-Fetch-Mode", "navigate")], origin=None)
    nav.url = APP + "/one"
    seq = [nav, exchange("GET", URL, start=1, response=allow())]
    first = [(p.id, p.url, p.requests) for p in run(seq).pages]
    assert first == [(p.id, p.url, p.requests) for p in run(seq).pages] == [("page_1", APP + "/one", 2)]
