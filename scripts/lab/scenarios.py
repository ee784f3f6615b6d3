"""Scenario data for the browser lab: what each page load fetches and what the servers answer.

Each scenario is one page load (or two, for the cache-across-page-loads case) on the page
origin. Its steps run in order; a step's `expect` records what Chromium is predicted to do
from the Fetch standard and Chromium's source (see shared/reference/cors-semantics.md). It is
documentation and a sanity check only: the truth file records what the browser did.

Server answers are templates. Placeholders, filled in per request by the server:
`{origin}` (the request's Origin header, i.e. an echo), `{acrm}` / `{acrh}` (echo of
Access-Control-Request-Method / -Headers), `{page}` / `{api}` / `{other}` (the lab origins),
`{api_port}`, `{scn}` (the scenario's path prefix). A header whose value renders empty is
omitted, so an echo of a missing request header sends nothing.

Each API path belongs to exactly one scenario (prefix `/<scenario>/`) so that preflight cache
entries never leak between scenarios; steps that share a path do so on purpose (caching).
"""

from __future__ import annotations

from dataclasses import dataclass

ACAO = "Access-Control-Allow-Origin"
ACAC = "Access-Control-Allow-Credentials"
ACAM = "Access-Control-Allow-Methods"
ACAH = "Access-Control-Allow-Headers"
ACMA = "Access-Control-Max-Age"

Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Answer:
    """One HTTP response from an API origin (duplicate header names allowed, in order).

    `delay_ms` holds the answer back, e.g. to keep a preflight in flight while parallel
    requests start (otherwise whether they find a cache entry is a race).
    """

    status: int = 200
    headers: Headers = ()
    location: str | None = None
    delay_ms: int = 0


@dataclass(frozen=True)
class Expect:
    """Predicted Chromium outcome; `preflight` None means "not asserted"."""

    outcome: str
    cors_error: str | None = None
    preflight: bool | None = None


def ok(pf: bool | None = None) -> Expect:
    return Expect("ok", None, pf)


def blocked(error: str, pf: bool | None = None) -> Expect:
    return Expect("blocked", error, pf)


# A server that gets CORS right for any request: echo origin, method and headers.
GOOD_PREFLIGHT = Answer(204, ((ACAO, "{origin}"), (ACAM, "{acrm}"), (ACAH, "{acrh}"), (ACAC, "true")))
GOOD_ACTUAL = Answer(200, ((ACAO, "{origin}"), (ACAC, "true")))
PAGE_ACTUAL = Answer(200, ((ACAO, "{page}"),))


def preflight(*extra: tuple[str, str], methods: str = "PUT", acao: str = "{page}", status: int = 204,
              max_age: str | None = None, location: str | None = None, delay_ms: int = 0) -> Answer:
    headers: list[tuple[str, str]] = [(ACAO, acao)] if acao else []
    if methods:
        headers.append((ACAM, methods))
    if max_age is not None:
        headers.append((ACMA, max_age))
    headers.extend(extra)
    return Answer(status, tuple(headers), location, delay_ms)


@dataclass(frozen=True)
class Step:
    id: str
    expect: Expect
    method: str = "GET"
    api: str = "api"  # "api" or "other"
    path: str | None = None  # under the scenario prefix; defaults to the step id
    query: str = ""
    headers: Headers = ()
    body: str | None = None
    content_type: str | None = None
    credentials: str = "same-origin"
    cache: str = "default"
    delay_ms: int = 0
    parallel: str | None = None
    page: int = 0
    preflight: Answer = GOOD_PREFLIGHT
    actual: Answer = GOOD_ACTUAL

    def request_headers(self) -> Headers:
        if self.content_type is None:
            return self.headers
        return self.headers + (("Content-Type", self.content_type),)


@dataclass(frozen=True)
class Target:
    """An extra API path that only a redirect reaches."""

    path: str
    preflight: Answer = GOOD_PREFLIGHT
    actual: Answer = GOOD_ACTUAL


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    steps: tuple[Step, ...]
    targets: tuple[Target, ...] = ()

    @property
    def prefix(self) -> str:
        return f"/{self.name}/"

    @property
    def pages(self) -> int:
        return 1 + max(s.page for s in self.steps)

    def step_path(self, step: Step) -> str:
        return self.prefix + (step.path or step.id)


def _put(id: str, expect: Expect, pf: Answer, **kw) -> Step:
    return Step(id, expect, method="PUT", body="x", content_type="text/plain", preflight=pf, **kw)


LONG_ACCEPT = "application/json, text/plain;q=0.9, text/html;q=0.8, application/xhtml+xml;q=0.7, application/xml;q=0.6, image/avif, image/webp, */*;q=0.1"
assert len(LONG_ACCEPT) > 128
N120 = "1" * 120
# Names Chromium safelists (cors.cc IsCorsSafelistedHeader); 9 x 120 bytes > 1024.
OVER_1024 = (
    ("Accept", "x" * 120), ("Accept-Language", "en" * 60), ("Content-Language", "de" * 60),
    ("Width", N120), ("Viewport-Width", N120), ("RTT", N120), ("Downlink", N120),
    ("Device-Memory", N120), ("DPR", N120),
)
UNDER_1024 = OVER_1024[:3]

SCENARIOS: tuple[Scenario, ...] = (
    Scenario("simple", "Requests that need no preflight (safelisted method, headers, content type).", (
        Step("get", ok(False), actual=PAGE_ACTUAL),
        Step("post-text", ok(False), method="POST", body="x", actual=PAGE_ACTUAL),
        Step("post-form", ok(False), method="POST", body="a=1", content_type="application/x-www-form-urlencoded", actual=PAGE_ACTUAL),
        Step("head", ok(False), method="HEAD", actual=PAGE_ACTUAL),
    )),
    Scenario("preflight-triggers", "Non-safelisted methods and headers; the server allows everything by echoing.", (
        Step("post-json", ok(True), method="POST", body="{}", content_type="application/json"),
        Step("put", ok(True), method="PUT", body="x"),
        Step("delete", ok(True), method="DELETE"),
        Step("patch", ok(True), method="PATCH", body="x"),
        Step("patch-lower", ok(True), method="patch", body="x"),
        Step("authorization", ok(True), headers=(("Authorization", "Bearer lab"),)),
        Step("x-custom", ok(True), headers=(("X-Custom", "1"),)),
    )),
    Scenario("content-types", "Content-Type values around the safelist (MIME parsing, unsafe bytes, CORS exceptions).", (
        Step("xml", ok(True), method="POST", body="<a/>", content_type="application/xml"),
        Step("plain-charset", ok(False), method="POST", body="x", content_type="text/plain;charset=UTF-8"),
        Step("plain-upper", ok(False), method="POST", body="x", content_type="TEXT/PLAIN"),
        Step("quoted-unsafe", ok(True), method="POST", body="x", content_type='text/plain; note="a:b"'),
        Step("csp-report", ok(True), method="POST", body="{}", content_type="application/csp-report"),
        Step("comma-list", ok(True), method="POST", body="x", content_type="text/plain, application/json"),
    )),
    Scenario("header-values", "Safelisted header names whose values decide the preflight (128/1024-byte rules, Range, Chromium-only names).", (
        Step("accept-long", ok(True), headers=(("Accept", LONG_ACCEPT),)),
        Step("content-language-ok", ok(False), headers=(("Content-Language", "de-DE"),)),
        Step("content-language-unsafe", ok(True), headers=(("Content-Language", "de:DE"),)),
        Step("range-start", ok(False), headers=(("Range", "bytes=0-10"),)),
        Step("range-suffix", ok(True), headers=(("Range", "bytes=-500"),)),
        Step("save-data", ok(False), headers=(("Save-Data", "on"),)),
        Step("dpr", ok(False), headers=(("DPR", "2"),)),
        Step("safelisted-under-1024", ok(False), headers=UNDER_1024),
        Step("safelisted-over-1024", ok(True), headers=OVER_1024),
    )),
    Scenario("actual-acao", "Simple GETs whose actual response carries a bad Access-Control-Allow-Origin.", (
        Step("missing", blocked("MissingAllowOriginHeader", False), actual=Answer(200)),
        Step("multiple-comma", blocked("MultipleAllowOriginValues", False), actual=Answer(200, ((ACAO, "{page}, http://example.test"),))),
        Step("multiple-lines", blocked("MultipleAllowOriginValues", False), actual=Answer(200, ((ACAO, "{page}"), (ACAO, "{page}")))),
        Step("invalid-value", blocked("InvalidAllowOriginValue", False), actual=Answer(200, ((ACAO, "not-an-origin"),))),
        Step("mismatch-port", blocked("AllowOriginMismatch", False), actual=Answer(200, ((ACAO, "http://127.0.0.1:1"),))),
        Step("mismatch-null", blocked("AllowOriginMismatch", False), actual=Answer(200, ((ACAO, "null"),))),
        Step("mismatch-slash", blocked("AllowOriginMismatch", False), actual=Answer(200, ((ACAO, "{page}/"),))),
    )),
    Scenario("credentials", "Credentials modes; the page sets cookie lab=1 (Path=/) on 127.0.0.1, same site as the API.", (
        Step("omit", ok(False), credentials="omit", actual=Answer(200, ((ACAO, "*"),))),
        Step("same-origin", ok(False), credentials="same-origin", actual=Answer(200, ((ACAO, "*"),))),
        Step("include-ok", ok(False), credentials="include", actual=Answer(200, ((ACAO, "{page}"), (ACAC, "true")))),
        Step("include-star", blocked("WildcardOriginNotAllowed", False), credentials="include", actual=Answer(200, ((ACAO, "*"), (ACAC, "true")))),
        Step("include-no-acac", blocked("InvalidAllowCredentials", False), credentials="include", actual=Answer(200, ((ACAO, "{page}"),))),
        Step("include-acac-upper", blocked("InvalidAllowCredentials", False), credentials="include", actual=Answer(200, ((ACAO, "{page}"), (ACAC, "TRUE")))),
        _put("put-include-ok", ok(True), preflight((ACAC, "true")), credentials="include", actual=Answer(200, ((ACAO, "{page}"), (ACAC, "true")))),
        _put("put-include-acam-star", blocked("MethodDisallowedByPreflightResponse", True), preflight((ACAC, "true"), methods="*"), credentials="include"),
        Step("get-include-acah-star", blocked("HeaderDisallowedByPreflightResponse", True), headers=(("X-Custom", "1"),), credentials="include",
             preflight=preflight((ACAH, "*"), (ACAC, "true"), methods="")),
    )),
    Scenario("preflight-acao", "Preflight responses with bad Access-Control-Allow-Origin/-Credentials or status.", (
        _put("missing", blocked("PreflightMissingAllowOriginHeader", True), preflight(acao="")),
        _put("status-404-no-acao", blocked("PreflightMissingAllowOriginHeader", True), preflight(acao="", status=404)),
        _put("status-404", blocked("PreflightInvalidStatus", True), preflight(status=404)),
        _put("status-500", blocked("PreflightInvalidStatus", True), preflight(status=500)),
        _put("redirect", blocked("PreflightDisallowedRedirect", True), preflight(status=302, location="{api}{scn}redirect-target")),
        _put("wildcard-include", blocked("PreflightWildcardOriginNotAllowed", True), preflight((ACAC, "true"), acao="*"), credentials="include"),
        _put("multiple-comma", blocked("PreflightMultipleAllowOriginValues", True), preflight(acao="{page}, http://example.test")),
        _put("multiple-lines", blocked("PreflightMultipleAllowOriginValues", True), preflight((ACAO, "{page}"))),
        _put("invalid-value", blocked("PreflightInvalidAllowOriginValue", True), preflight(acao="not-an-origin")),
        _put("mismatch", blocked("PreflightAllowOriginMismatch", True), preflight(acao="http://127.0.0.1:1")),
        _put("invalid-acac", blocked("PreflightInvalidAllowCredentials", True), preflight(), credentials="include"),
    )),
    Scenario("preflight-lists", "Preflight Allow-Methods/Allow-Headers that are malformed or do not cover the request.", (
        _put("acam-invalid", blocked("InvalidAllowMethodsPreflightResponse", True), preflight(methods="PUT DELETE")),
        _put("acah-invalid", blocked("InvalidAllowHeadersPreflightResponse", True), preflight((ACAH, "X-Custom X-Other")), headers=(("X-Custom", "1"),)),
        _put("method-disallowed", blocked("MethodDisallowedByPreflightResponse", True), preflight(methods="GET, POST")),
        Step("patch-lower-vs-upper", blocked("MethodDisallowedByPreflightResponse", True), method="patch", body="x", preflight=preflight(methods="PATCH")),
        _put("header-disallowed", blocked("HeaderDisallowedByPreflightResponse", True), preflight((ACAH, "X-Other")), headers=(("X-Custom", "1"),)),
        Step("authorization-star", ok(True), headers=(("Authorization", "Bearer lab"),), preflight=preflight((ACAH, "*"), methods="")),
    )),
    Scenario("redirects", "Redirects of the actual request: same origin, cross origin (Origin becomes null), userinfo in Location.", (
        Step("same-origin", ok(False), actual=Answer(302, ((ACAO, "{origin}"),), "{api}{scn}same-origin-target")),
        Step("redirect-no-acao", blocked("MissingAllowOriginHeader", False), actual=Answer(302, (), "{api}{scn}redirect-no-acao-target")),
        Step("cross-star", ok(False), actual=Answer(302, ((ACAO, "{origin}"),), "{other}{scn}cross-star-target")),
        Step("cross-echo-null", ok(False), actual=Answer(302, ((ACAO, "{origin}"),), "{other}{scn}cross-echo-null-target")),
        Step("cross-page-origin", blocked("AllowOriginMismatch", False), actual=Answer(302, ((ACAO, "{origin}"),), "{other}{scn}cross-page-origin-target")),
        Step("userinfo", blocked("RedirectContainsCredentials", False), actual=Answer(302, ((ACAO, "{origin}"),), "http://user:pass@127.0.0.1:{api_port}{scn}userinfo-target")),
        _put("put-same-307", ok(True), GOOD_PREFLIGHT, actual=Answer(307, ((ACAO, "{origin}"),), "{api}{scn}put-same-307-target")),
        _put("put-cross-307", ok(True), GOOD_PREFLIGHT, actual=Answer(307, ((ACAO, "{origin}"),), "{other}{scn}put-cross-307-target")),
    ), targets=(
        Target("same-origin-target", actual=PAGE_ACTUAL),
        Target("redirect-no-acao-target", actual=PAGE_ACTUAL),
        Target("cross-star-target", actual=Answer(200, ((ACAO, "*"),))),
        Target("cross-echo-null-target", actual=Answer(200, ((ACAO, "{origin}"),))),
        Target("cross-page-origin-target", actual=PAGE_ACTUAL),
        Target("userinfo-target", actual=PAGE_ACTUAL),
        Target("put-same-307-target"),
        Target("put-cross-307-target"),
    )),
    Scenario("cache-expiry", "Preflight cache lifetime: Max-Age absent (5 s default) and 2 s, with repeats straddling expiry.", (
        _put("absent-1", ok(True), preflight(), path="absent"),
        _put("absent-2", ok(False), preflight(), path="absent"),
        _put("two-1", ok(True), preflight(max_age="2"), path="two"),
        _put("two-2", ok(False), preflight(max_age="2"), path="two", delay_ms=1000),
        _put("two-3", ok(True), preflight(max_age="2"), path="two", delay_ms=2500),
        _put("absent-3", ok(True), preflight(), path="absent", delay_ms=2500),
    )),
    Scenario("cache-max-age-values", "Access-Control-Max-Age parsing: 0, above Chromium's 7200 s cap, -1, garbage, leading '+'.", (
        _put("zero-1", ok(True), preflight(max_age="0"), path="zero"),
        _put("zero-2", ok(True), preflight(max_age="0"), path="zero"),
        _put("big-1", ok(True), preflight(max_age="86400"), path="big"),
        _put("big-2", ok(False), preflight(max_age="86400"), path="big"),
        _put("negative-1", ok(True), preflight(max_age="-1"), path="negative"),
        _put("negative-2", ok(True), preflight(max_age="-1"), path="negative"),
        _put("garbage-1", ok(True), preflight(max_age="abc"), path="garbage"),
        _put("garbage-2", ok(False), preflight(max_age="abc"), path="garbage"),
        _put("plus-1", ok(True), preflight(max_age="+3"), path="plus"),
        _put("plus-2", ok(False), preflight(max_age="+3"), path="plus"),
    )),
    Scenario("cache-url-keys", "The query string is part of the preflight cache key.", (
        _put("q1", ok(True), preflight(max_age="60"), path="k", query="?_=1"),
        _put("q2", ok(True), preflight(max_age="60"), path="k", query="?_=2"),
        _put("q1-again", ok(False), preflight(max_age="60"), path="k", query="?_=1"),
    )),
    Scenario("cache-not-covered", "A cached entry does not cover a new header or method (server echoes only what was requested).", (
        _put("put-a", ok(True), preflight((ACAH, "{acrh}"), methods="{acrm}", max_age="60"), path="r", headers=(("X-A", "1"),)),
        _put("put-a-again", ok(False), preflight((ACAH, "{acrh}"), methods="{acrm}", max_age="60"), path="r", headers=(("X-A", "1"),)),
        _put("put-b", ok(True), preflight((ACAH, "{acrh}"), methods="{acrm}", max_age="60"), path="r", headers=(("X-B", "1"),)),
        Step("delete", ok(True), method="DELETE", path="r", preflight=preflight((ACAH, "{acrh}"), methods="{acrm}", max_age="60")),
    )),
    Scenario("cache-wildcard", "Wildcard Allow-Methods/-Headers in the cache; '*' never covers Authorization in Chromium's cache lookup.", (
        _put("custom-1", ok(True), preflight((ACAH, "*"), methods="*", max_age="60"), path="custom", headers=(("X-Custom", "1"),)),
        _put("custom-2", ok(False), preflight((ACAH, "*"), methods="*", max_age="60"), path="custom", headers=(("X-Custom", "1"),)),
        Step("auth-1", ok(True), path="auth", headers=(("Authorization", "Bearer lab"),), preflight=preflight((ACAH, "*"), methods="*", max_age="60")),
        Step("auth-2", ok(True), path="auth", headers=(("Authorization", "Bearer lab"),), preflight=preflight((ACAH, "*"), methods="*", max_age="60")),
    )),
    Scenario("cache-echo-method", "Server echoes only the requested method: Chromium replaces its entry, so PUT/DELETE/PUT re-preflight.", (
        _put("put-1", ok(True), preflight(methods="{acrm}", max_age="60"), path="e"),
        Step("delete", ok(True), method="DELETE", path="e", preflight=preflight(methods="{acrm}", max_age="60")),
        _put("put-2", ok(True), preflight(methods="{acrm}", max_age="60"), path="e"),
    )),
    Scenario("cache-no-store", "fetch cache mode 'no-store' bypasses the preflight cache and does not fill it.", (
        _put("no-store-1", ok(True), preflight(max_age="60"), path="n", cache="no-store"),
        _put("no-store-2", ok(True), preflight(max_age="60"), path="n", cache="no-store"),
        _put("default-1", ok(True), preflight(max_age="60"), path="n"),
        _put("default-2", ok(False), preflight(max_age="60"), path="n"),
    )),
    Scenario("cache-parallel", "Identical requests in parallel (Promise.all) while a slow (300 ms) preflight is in flight: "
             "in-flight preflights are not coalesced.", (
        _put("p1", ok(True), preflight(max_age="60", delay_ms=300), path="p", parallel="a"),
        _put("p2", ok(True), preflight(max_age="60", delay_ms=300), path="p", parallel="a"),
        _put("p3", ok(True), preflight(max_age="60", delay_ms=300), path="p", parallel="a"),
    )),
    Scenario("cache-credentials", "An uncredentialed entry cannot serve a credentialed request; a credentialed one serves both.", (
        _put("omit-1", ok(True), preflight((ACAC, "true"), max_age="60"), path="c", credentials="omit", actual=Answer(200, ((ACAO, "{page}"), (ACAC, "true")))),
        _put("include", ok(True), preflight((ACAC, "true"), max_age="60"), path="c", credentials="include", actual=Answer(200, ((ACAO, "{page}"), (ACAC, "true")))),
        _put("omit-2", ok(False), preflight((ACAC, "true"), max_age="60"), path="c", credentials="omit", actual=Answer(200, ((ACAO, "{page}"), (ACAC, "true")))),
    )),
    Scenario("cache-page-loads", "The preflight cache outlives the page: a second page load reuses the entry (Max-Age 60).", (
        _put("load-1", ok(True), preflight(max_age="60"), path="l", page=0),
        _put("load-2", ok(False), preflight(max_age="60"), path="l", page=1),
    )),
)


def routes(scenarios: tuple[Scenario, ...] = SCENARIOS) -> dict[str, tuple[Answer, Answer]]:
    """Path -> (preflight answer, actual answer); steps sharing a path must agree."""
    table: dict[str, tuple[Answer, Answer]] = {}
    for scn in scenarios:
        entries = [(scn.step_path(s), (s.preflight, s.actual)) for s in scn.steps]
        entries += [(scn.prefix + t.path, (t.preflight, t.actual)) for t in scn.targets]
        for path, answers in entries:
            if table.setdefault(path, answers) != answers:
                raise ValueError(f"conflicting answers for {path}")
    return table


def page_loads(scenarios: tuple[Scenario, ...] = SCENARIOS) -> list[tuple[Scenario, int]]:
    return [(scn, page) for scn in scenarios for page in range(scn.pages)]


def by_name(scenarios: tuple[Scenario, ...] = SCENARIOS) -> dict[str, Scenario]:
    return {s.name: s for s in scenarios}
