"""The engine: one pass over exchanges in completion order.

Both doors feed it the same way: the addon as flows complete, the CLI after sorting a
recording by completion time. For every exchange it decides the kind, pairs preflights
with the request they authorised, judges the verdict with the Fetch rules under one
engine profile, models that engine's preflight cache to call repeats redundant (with
their cause), tallies page loads and folds everything into findings. State is bounded:
pending preflights expire after ``pairing_window`` seconds of trace time, the cache
model follows the engine's own size limit, and per-flow results are only kept when a
per-flow report was asked for.
"""

from __future__ import annotations

import re
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from cors_addon import SCHEMA, __version__
from cors_addon.catalogue import FINDINGS, console_text, render_fix
from cors_addon.engines import Engine
from cors_addon.exchange import Exchange
from cors_addon.fetch_rules import (
    SAFELISTED_METHODS,
    CorsFailure,
    PreflightAnswer,
    check_access,
    check_preflight,
    check_redirect_location,
    cors_unsafe_header_names,
    headers_not_allowed,
    is_redirect,
    method_allowed,
    origin_of,
    parse_header_list,
    parse_request_header_names,
)
from cors_addon.pages import PageTally, PageTracker
from cors_addon.preflight_cache import CacheEntry, PreflightCache


PAIRING_TOLERANCE = 0.05
"""HAR timestamps are rounded to the millisecond and Chrome's ``blocked`` time is
approximate, so a request may appear to leave up to 50 ms before its preflight ended."""
REDUNDANCY_HORIZON = 86400.0
MAX_FLOWS_PER_FINDING = 200
CACHE_BUSTING_PARAMS = frozenset(
    {"_", "_t", "_ts", "ts", "timestamp", "cb", "cachebust", "cachebuster", "nocache", "rnd", "random", "bust"}
)
MAX_AGE_CAUSES = {
    "absent": "no-max-age",
    "valid": "max-age-too-small",
    "zero": "max-age-zero",
    "negative": "max-age-negative",
    "invalid": "max-age-invalid",
    "overflow": "max-age-invalid",
    "capped": "max-age-above-cap",
}


@dataclass(slots=True)
class FlowResult:
    id: str
    index: int
    page: str
    method: str
    url: str
    origin: str | None
    status: int
    kind: str
    started: float
    duration_ms: float
    requested: dict | None = None
    pair: str | None = None
    verdict: str = "ok"
    cors_error: str | None = None
    failed_parameter: str | None = None
    message: str | None = None
    never_sent: bool = False
    redundant: bool = False
    cause: str | None = None
    credentials: str | None = None
    cache_hit: bool = False
    max_age: dict | None = None
    notes: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    allowed: tuple[list[str], list[str]] | None = None
    """What the deciding preflight answer already allowed (methods, headers), so a fix
    can name the full list to send; not part of the JSON flow record."""

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "page": self.page,
            "method": self.method,
            "url": self.url,
            "origin": self.origin,
            "status": self.status,
            "kind": self.kind,
            "started": self.started,
            "duration_ms": round(self.duration_ms, 1),
            "requested": self.requested,
            "pair": self.pair,
            "verdict": self.verdict,
            "cors_error": self.cors_error,
            "failed_parameter": self.failed_parameter,
            "message": self.message,
            "never_sent": self.never_sent,
            "redundant": self.redundant,
            "cause": self.cause,
            "credentials": self.credentials,
            "cache_hit": self.cache_hit,
            "max_age": self.max_age,
            "notes": list(self.notes),
            "findings": list(self.findings),
        }


@dataclass(slots=True)
class _Preflight:
    ex: Exchange
    result: FlowResult
    origin: str
    method: str
    headers: list[str]
    omit: CorsFailure | PreflightAnswer | None
    include: CorsFailure | PreflightAnswer | None
    entry: CacheEntry | None = None
    early_blocked: bool = False
    parallel: list[str] = field(default_factory=list)
    repeats: dict[bool, tuple[CacheEntry, str]] = field(default_factory=dict)
    per_url: tuple[str, str, str] | None = None

    @property
    def origin_scope(self) -> str:
        return origin_of(self.ex.url)


@dataclass(slots=True)
class _Finding:
    id: str
    scope: str
    count: int = 0
    flows: list[str] = field(default_factory=list)
    origins: set[str] = field(default_factory=set)
    methods: set[str] = field(default_factory=set)
    headers: set[str] = field(default_factory=set)
    example: str | None = None


class Analyzer:
    def __init__(
        self,
        engine: Engine,
        *,
        keep_flows: bool = True,
        pages: PageTracker | None = None,
        what_if: Iterable[int] = (),
        pairing_window: float = 5.0,
        on_result: Callable[[FlowResult], None] | None = None,
        on_blocked: Callable[[FlowResult], None] | None = None,
    ) -> None:
        self.engine = engine
        self.keep_flows = keep_flows
        self.pairing_window = pairing_window
        self.on_result = on_result
        self.on_blocked = on_blocked
        self.pages = pages if pages is not None else PageTracker()
        self.cache = PreflightCache(engine)
        self.answers = PreflightCache(engine, max_keys=4096, every_url=True)
        """Every successful answer, whether or not the engine cached it: redundancy
        asks whether the same question was already answered."""
        self._cors_targets: set[str] = set()
        self._echoed: OrderedDict[str, set[str]] = OrderedDict()
        self._allow_origins: OrderedDict[str, tuple[set[str], str]] = OrderedDict()
        self.flows: list[FlowResult] = []
        self.findings: dict[tuple[str, str], _Finding] = {}
        self.kinds: dict[str, int] = {}
        self.exchanges = 0
        self._pending: dict[tuple[str, str], list[_Preflight]] = {}
        self._paired: dict[str, _Preflight | None] = {}
        self._pending_order: deque[_Preflight] = deque()
        self._recent: OrderedDict[tuple[str, str], deque[tuple[float, float, str, tuple, str]]] = OrderedDict()
        self._templates: OrderedDict[tuple[str, str], tuple[str, CacheEntry]] = OrderedDict()
        caps = sorted({int(s) for s in what_if} | {engine.cap})
        self._what_if = {f"max_age_{s}": (s, PreflightCache(engine)) for s in caps}

    # -- feeding -----------------------------------------------------------------

    def begin(self, ex: Exchange) -> None:
        """A request is leaving for the network: pair it now with the preflight that
        authorised it. Every preflight has completed by then (Chromium starts the
        actual request only after its preflight passed), however long the request
        itself will take. Call in start order; the live addon calls it from the
        ``request`` hook."""
        if is_preflight(ex):
            return
        self._expire(ex.wire_start - self.pairing_window)
        self._paired[ex.id] = self._take_preflight(ex, ex.request_headers.get("origin"))

    def add(self, ex: Exchange) -> None:
        """A response (or error) completed: judge it. Call in completion order."""
        self.exchanges += 1
        if ex.id not in self._paired and not is_preflight(ex):
            self.begin(ex)
        page = ex.page if ex.page in self.pages.pages else self.pages.page_for(ex)
        tally = self.pages.pages[page]
        tally.requests += 1
        if is_preflight(ex):
            self._add_preflight(ex, page, tally)
        else:
            self._add_request(ex, page, tally)

    # -- preflights --------------------------------------------------------------

    def _add_preflight(self, ex: Exchange, page: str, tally: PageTally) -> None:
        hdrs = ex.request_headers
        origin = hdrs.get("origin") or _origin_from_referer(hdrs.get("referer")) or "null"
        method = (hdrs.get("access-control-request-method") or "").strip()
        requested = parse_request_header_names(hdrs.combined("access-control-request-headers"))
        result = self._result(ex, page, origin, "preflight")
        result.requested = {"method": method, "headers": requested}
        tally.preflights += 1
        tally.cross_origin += 1
        tally.preflight_time_ms += ex.duration_ms
        age = self.engine.parse_max_age(ex.response_headers.get_all("access-control-max-age"))
        if ex.has_response:
            result.max_age = {"raw": age.raw, "seconds": age.seconds, "reason": age.reason}
            omit, include = (
                check_preflight(
                    ex.status, ex.response_headers, origin, method, requested, cred,
                    wildcard_covers_authorization=self.engine.wildcard_covers_authorization,
                )
                for cred in (False, True)
            )
            self._check_security(ex, origin, result)
        else:
            omit = include = None
        p = _Preflight(ex, result, origin, method, requested, omit, include)
        result.allowed = (
            [m for m in parse_header_list(ex.response_headers.combined("access-control-allow-methods")) or () if m != "*"],
            [h.lower() for h in parse_header_list(ex.response_headers.combined("access-control-allow-headers")) or ()
             if h != "*"],
        )
        self._judge_redundancy(p)
        answer = include if isinstance(include, PreflightAnswer) else omit
        if isinstance(answer, PreflightAnswer):
            stored = PreflightAnswer(answer.methods, answer.headers, False)
            p.entry = CacheEntry(ex.id, page, ex.ended, ex.ended + age.seconds, stored, age)
            if not _bypasses_cache(ex):
                self.cache.store(origin, ex.url, p.entry)
            self.answers.store(origin, ex.url, p.entry)
            self._remember_template(origin, ex.url, p.entry)
        self._run_what_if(p, tally)
        key = (ex.url, method.upper())
        self._pending.setdefault(key, []).append(p)
        self._pending_order.append(p)
        if not isinstance(omit, PreflightAnswer) and not isinstance(include, PreflightAnswer):
            p.early_blocked = True
            self._set_blocked(result, omit, ex)
            result.never_sent = True
            if self.on_blocked:
                self.on_blocked(result)

    def _judge_redundancy(self, p: _Preflight) -> None:
        """Work out, at the moment the preflight was sent, whether the same question
        had already been answered, for either credentials mode: which mode applies is
        only known once the request it authorised is seen (:meth:`_settle`)."""
        ex, at = p.ex, p.ex.wire_start
        key = (p.origin, ex.url)
        recent = _lru_get(self._recent, key, lambda: deque(maxlen=8))
        p.parallel = [r[4] for r in recent if r[0] <= at < r[1] and r[2:4] == (p.method, tuple(p.headers))]
        recent.append((ex.wire_start, ex.ended, p.method, tuple(p.headers), ex.id))
        for credentials in (False, True):
            earlier = self._allowed_before(p, at, credentials)
            if earlier is not None:
                p.repeats[credentials] = (earlier, self._repeat_cause(p, earlier, credentials))
        if not p.parallel and not p.repeats:
            p.per_url = self._check_per_url(p)

    def _repeat_cause(self, p: _Preflight, earlier: CacheEntry, credentials: bool) -> str:
        if _bypasses_cache(p.ex):
            return "cache-bypassed"
        lookup = self.cache.lookup(p.origin, p.ex.url, p.method, p.headers, credentials, p.ex.wire_start)
        if lookup.hit:
            return "repeat-within-max-age"
        if lookup.reason == "expired" and lookup.entry is not None:
            return MAX_AGE_CAUSES[lookup.entry.max_age.reason]
        if lookup.reason in ("wildcard-authorization", "wildcard-not-cached", "url-too-long"):
            return lookup.reason
        if lookup.reason == "not-covered" and self.engine.replaces_entries:
            return "entry-replaced"
        if lookup.reason == "not-covered":
            return MAX_AGE_CAUSES[earlier.max_age.reason]
        return "repeat-within-max-age"

    def _settle(self, p: _Preflight) -> None:
        """Record the preflight's redundancy under the credentials mode of the request
        it authorised: an uncredentialed answer cannot serve a credentialed request, so
        asking again for one is not redundant (Fetch #cors-preflight-cache, match)."""
        repeat = p.repeats.get(p.result.credentials == "include")
        if repeat is not None:
            earlier, cause = repeat
            tally = self.pages.pages[p.result.page]
            p.result.redundant = True
            p.result.cause = cause
            gap = p.ex.wire_start - earlier.stored_at
            p.result.notes.append(f"same question answered by {earlier.preflight_id} {gap:.1f}s earlier")
            tally.redundant_preflights += 1
            tally.avoidable_time_ms += p.ex.duration_ms
            f = self._record("redundant-" + cause, p.origin_scope, p.result)
            f.methods.update(earlier.answer.methods - {"*"} | {p.method})
            f.headers.update(earlier.answer.headers - {"*"} | set(p.headers))
        elif p.parallel:
            p.result.notes.append("parallel: sent before an identical preflight was answered")
            self._record("parallel-preflights", p.origin_scope, p.result, extra_flows=p.parallel)
        elif p.per_url:
            fid, url, other = p.per_url
            p.result.notes.append(f"same endpoint as {url}: the preflight cache is keyed by full URL")
            self._record(fid, p.origin_scope, p.result, extra_flows=[other])

    def _finish_preflight(self, p: _Preflight, *, record: bool = True) -> None:
        self._settle(p)
        self._finish(p.result, record=record)

    def _allowed_before(self, p: _Preflight, at: float, credentials: bool) -> CacheEntry | None:
        """The newest earlier successful answer for this origin and URL that already
        allowed this method and these headers (and, for a credentialed request, was
        itself credentialed): the browser asked the same question again."""
        history = self.answers.history(p.origin, p.ex.url, credentials)
        for entry in reversed(history):
            if entry.stored_at > at or at - entry.stored_at > REDUNDANCY_HORIZON:
                continue
            if credentials and not entry.answer.credentials:
                continue
            if _answer_allows(entry.answer, p.method, p.headers, self.engine):
                return entry
        return None

    def _check_per_url(self, p: _Preflight) -> tuple[str, str, str] | None:
        """Preflights whose URLs differ only by query or an id-like path segment: a
        per-origin cache would have answered them, the per-URL one cannot."""
        seen = self._templates.get((p.origin, url_template(p.ex.url)))
        if seen is None:
            return None
        url, entry = seen
        if url == p.ex.url or p.ex.wire_start - entry.stored_at > self.engine.cap:
            return None
        if not _answer_allows(entry.answer, p.method, p.headers, self.engine):
            return None
        fid = "cache-busting-parameter" if _differs_by_cache_buster(url, p.ex.url) else "per-url-cache-key"
        return fid, url, entry.preflight_id

    def _remember_template(self, origin: str, url: str, entry: CacheEntry) -> None:
        _lru_put(self._templates, (origin, url_template(url)), (url, entry))

    def _run_what_if(self, p: _Preflight, tally: PageTally) -> None:
        """Replay this preflight against a cache whose answers carried Max-Age ``s``:
        would the browser have skipped it? Failed answers, cache bypasses and repeats
        the real answer already covered cannot be fixed by Max-Age and are never
        counted as saved."""
        if p.entry is None or _bypasses_cache(p.ex):
            return
        already_cached = self.cache.lookup(p.origin, p.ex.url, p.method, p.headers, False, p.ex.wire_start).hit
        for name, (seconds, cache) in self._what_if.items():
            hit = cache.lookup(p.origin, p.ex.url, p.method, p.headers, False, p.ex.wire_start).hit
            slot = tally.what_if.setdefault(name, {"preflights_saved": 0, "time_saved_ms": 0.0})
            if hit and not already_cached:
                slot["preflights_saved"] += 1
                slot["time_saved_ms"] += p.ex.duration_ms
                continue
            age = self.engine.parse_max_age([str(seconds)])
            cache.store(p.origin, p.ex.url, CacheEntry(
                p.ex.id, p.result.page, p.ex.ended, p.ex.ended + age.seconds, p.entry.answer, age))

    # -- actual requests ---------------------------------------------------------

    def _add_request(self, ex: Exchange, page: str, tally: PageTally) -> None:
        hdrs = ex.request_headers
        p = self._paired.pop(ex.id, None)
        origin = hdrs.get("origin") or (p.origin if p else None)
        target = origin_of(ex.url)
        fetch_mode = (hdrs.get("sec-fetch-mode") or "").lower()
        if p is None and (origin is None or origin == target):
            kind = "same-origin" if origin == target or hdrs.get("sec-fetch-site") == "same-origin" else "not-cors"
            self._finish(self._result(ex, page, origin, kind))
            return
        if p is None and fetch_mode and fetch_mode != "cors":
            self._finish(self._result(ex, page, origin, "not-cors"))
            return
        tally.cross_origin += 1
        self._cors_targets.add(target)
        credentials = "include" if "cookie" in hdrs else None
        if p is None:
            unsafe = cors_unsafe_header_names(hdrs, chromium_extras=self.engine.chromium_extras, wire=True)
            needs_preflight = ex.method not in SAFELISTED_METHODS or bool(unsafe)
        else:
            needs_preflight = True
        result = self._result(ex, page, origin, "preflighted" if p or needs_preflight else "simple")
        result.credentials = credentials
        if p is not None:
            self._pair(p, ex, result, tally)
        elif needs_preflight:
            lookup = self.cache.lookup(origin, ex.url, ex.method, unsafe, credentials == "include", ex.wire_start)
            if lookup.hit and lookup.entry is not None:
                result.cache_hit = True
                result.notes.append(f"preflight answered from the cache ({lookup.entry.preflight_id})")
                if lookup.entry.page != page:
                    self._record("cache-carried-over", _scope(origin, ex.url), result,
                                 extra_flows=[lookup.entry.preflight_id])
            else:
                self._record("preflight-not-recorded", _scope(origin, ex.url), result)
        if ex.has_response:
            self._check_security(ex, origin, result)
        if result.verdict != "blocked":
            self._judge_response(ex, result, origin, p)
            if result.verdict == "blocked" and result.kind == "simple" and not fetch_mode and not ex.error:
                result.verdict = "unknown"
                result.notes.append(
                    "no Sec-Fetch-Mode header: this may be a no-cors request (sendBeacon, form post),"
                    f" which is not CORS-checked; as a CORS request it fails as {result.cors_error}"
                )
        if result.verdict == "blocked":
            tally.blocked += 1
        self._finish(result)

    def _take_preflight(self, ex: Exchange, origin_hdr: str | None) -> _Preflight | None:
        """Pair by origin, full URL and method == Access-Control-Request-Method, the
        preflight answered before the request left; never by connection, since
        preflights go uncredentialed on their own connections. Among candidates, one
        whose verdict agrees with what happened to the request wins, then the closest
        in time (a failed preflight, then a retry that passed, then the request).
        After a cross-origin redirect Firefox sends the new preflight with the page's
        origin but the request itself with ``Origin: null`` (seen in the browser lab),
        so a tainted request may pair with a preflight of another origin."""
        key = (ex.url, ex.method.upper())
        candidates = self._pending.get(key)
        if not candidates:
            return None
        sent = ex.has_response
        best, best_rank = None, None
        for p in candidates:
            same_origin = origin_hdr is None or p.origin == origin_hdr
            if not same_origin and origin_hdr != "null":
                continue
            if p.ex.started > ex.wire_start + PAIRING_TOLERANCE:
                continue
            agrees = (not p.early_blocked) == sent
            rank = (not same_origin, not agrees, abs(ex.wire_start - p.ex.ended))
            if best_rank is None or rank < best_rank:
                best, best_rank = p, rank
        if best is not None:
            candidates.remove(best)
            if not candidates:
                del self._pending[key]
        return best

    def _pair(self, p: _Preflight, ex: Exchange, result: FlowResult, tally: PageTally) -> None:
        pr = p.result
        pr.pair, result.pair = ex.id, pr.id
        result.allowed = (
            (pr.allowed[0] if pr.allowed else []) + [p.method],
            (pr.allowed[1] if pr.allowed else []) + p.headers,
        )
        if not ex.has_response:
            result.never_sent = True
            failure = p.omit if result.credentials != "include" else p.include
            if isinstance(failure, PreflightAnswer):
                failure = p.include
            if isinstance(failure, CorsFailure):
                self._set_blocked(result, failure, ex)
                if not p.early_blocked:
                    self._set_blocked(pr, failure, p.ex)
                    pr.credentials = result.credentials = "include"
                    pr.notes.append("fails only with credentials: 'include'")
                pr.never_sent = True
                self._finish_preflight(p, record=False)
            elif not p.ex.has_response:
                self._set_blocked(result, None, p.ex)
                self._finish_preflight(p, record=False)
            else:
                result.verdict = "unknown"
                result.message = ex.error or "no response"
                self._finish_preflight(p, record=False)
            return
        if p.early_blocked:
            pr.verdict, pr.cors_error, pr.failed_parameter, pr.never_sent = "ok", None, None, False
            pr.notes.append("the browser sent the request although these rules reject the preflight")
            self._record("engine-disagreement", p.origin_scope, pr)
        if result.credentials is None:
            result.credentials = "omit" if isinstance(p.omit, PreflightAnswer) and not isinstance(p.include, PreflightAnswer) else None
        elif result.credentials == "include" and p.entry is not None:
            p.entry.answer = PreflightAnswer(p.entry.answer.methods, p.entry.answer.headers, True)
        pr.credentials = result.credentials
        self._finish_preflight(p, record=False)

    def _judge_response(self, ex: Exchange, result: FlowResult, origin: str, p: _Preflight | None) -> None:
        """The CORS check on the actual response (and on each redirect response): a
        simple request that fails here was fully sent and answered; only the page is
        denied the response (Fetch #http-fetch, #concept-cors-check)."""
        if not ex.has_response:
            result.verdict = "unknown"
            result.message = ex.error or "no response"
            return
        if ex.status == 304:
            return
        if result.credentials is not None:
            failure = check_access(ex.response_headers, origin, result.credentials == "include")
        else:
            failure = check_access(ex.response_headers, origin, False)
            if failure is None:
                strict = check_access(ex.response_headers, origin, True)
                if strict is not None and ex.error and "ERR_FAILED" in ex.error:
                    failure, result.credentials = strict, "include"
                    result.notes.append("fails only with credentials: 'include'")
        if failure is None and is_redirect(ex.status, ex.response_headers):
            failure = check_redirect_location(ex.response_headers.get("location"))
        if failure is not None:
            self._set_blocked(result, failure, ex)

    # -- security ----------------------------------------------------------------

    def _check_security(self, ex: Exchange, origin: str, result: FlowResult) -> None:
        """Passive checks of what the answer trusts, on every CORS response. Each finding
        has a more severe ``-credentials`` twin when Access-Control-Allow-Credentials is
        true, because then the readable responses carry the user's session."""
        allow = ex.response_headers.combined("access-control-allow-origin")
        if allow is None or allow == "*":
            return
        scope = origin_of(ex.url)
        suffix = "-credentials" if ex.response_headers.combined("access-control-allow-credentials") == "true" else ""
        if allow == "null":
            self._record("null-origin-allowed" + suffix, scope, result)
        elif allow.lower().startswith("http://") and ex.url.lower().startswith("https://"):
            self._record("insecure-origin-trusted" + suffix, scope, result)
        if allow == origin and origin != "null":
            echoed = _bounded_set(self._echoed, scope)
            echoed.add(origin)
            if len(echoed) >= 2:
                self._record("origin-reflected" + suffix, scope, result)
        values, first = _lru_get(self._allow_origins, scope, lambda: (set(), ex.id))
        if len(values) < 16:
            values.add(allow)
        if len(values) >= 2:
            vary = {v.strip().lower() for v in ",".join(ex.response_headers.get_all("vary")).split(",")}
            if not vary & {"origin", "*"}:
                self._record("missing-vary-origin" + suffix, scope, result, extra_flows=[first])

    # -- bookkeeping -------------------------------------------------------------

    def _set_blocked(self, result: FlowResult, failure: CorsFailure | PreflightAnswer | None, ex: Exchange) -> None:
        result.verdict = "blocked"
        if isinstance(failure, CorsFailure):
            result.cors_error = failure.error
            result.failed_parameter = failure.parameter
            result.message = console_text(failure.error, failure.parameter)
        else:
            result.cors_error = None
            result.message = f"preflight failed: {ex.error or 'no response'}"

    def _result(self, ex: Exchange, page: str, origin: str | None, kind: str) -> FlowResult:
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        return FlowResult(
            id=ex.id, index=ex.source_index, page=page, method=ex.method, url=ex.url,
            origin=origin, status=ex.status, kind=kind, started=ex.started, duration_ms=ex.duration_ms,
        )

    def _finish(self, result: FlowResult, *, record: bool = True) -> None:
        if record and result.verdict == "blocked":
            fid = result.cors_error or "preflight-network-error"
            f = self._record(fid, _scope(result.origin or "", result.url), result)
            if result.requested:
                f.methods.add(result.requested["method"])
                f.headers.update(result.requested["headers"])
            if result.allowed:
                f.methods.update(result.allowed[0])
                f.headers.update(result.allowed[1])
            if f.example is None:
                f.example = result.message
        if self.keep_flows:
            self.flows.append(result)
        if self.on_result:
            self.on_result(result)

    def _record(self, fid: str, scope: str, result: FlowResult, extra_flows: Iterable[str] = ()) -> _Finding:
        key = (fid, scope)
        f = self.findings.get(key)
        if f is None:
            f = self.findings[key] = _Finding(fid, scope)
        f.count += 1
        if result.origin:
            f.origins.add(result.origin)
        for flow_id in (*extra_flows, result.id):
            if len(f.flows) < MAX_FLOWS_PER_FINDING and flow_id not in f.flows:
                f.flows.append(flow_id)
        if fid not in result.findings:
            result.findings.append(fid)
        return f

    def _expire(self, horizon: float) -> None:
        """Preflights no request followed within the window were never followed: a
        blocked one was never sent; a passing one is reported as not followed."""
        while self._pending_order and self._pending_order[0].ex.ended < horizon:
            p = self._pending_order.popleft()
            key = (p.ex.url, p.method.upper())
            bucket = self._pending.get(key)
            if not bucket or p not in bucket:
                continue
            bucket.remove(p)
            if not bucket:
                del self._pending[key]
            self._finish_unfollowed(p)

    def _finish_unfollowed(self, p: _Preflight) -> None:
        r = p.result
        tally = self.pages.pages[r.page]
        if p.early_blocked:
            tally.blocked += 1
            if not r.credentials and isinstance(p.include, CorsFailure) and p.include != p.omit and p.omit:
                r.notes.append(f"with credentials: 'include' it fails as {p.include.error}")
            self._finish_preflight(p)
        elif isinstance(p.include, CorsFailure) and origin_of(p.ex.url) not in self._cors_targets:
            r.verdict = "unknown"
            r.message = "no request followed, and the recording holds no request to this origin (filtered export?)"
            r.notes.append(f"passes without credentials; with credentials: 'include' it fails as {p.include.error}")
            self._finish_preflight(p)
        elif isinstance(p.include, CorsFailure):
            self._set_blocked(r, p.include, p.ex)
            r.never_sent = True
            r.credentials = "include"
            r.notes.append("passes without credentials, fails with credentials: 'include'; no request followed")
            tally.blocked += 1
            if self.on_blocked:
                self.on_blocked(r)
            self._finish_preflight(p)
        else:
            r.verdict = "unknown"
            r.message = "the preflight passed but no request followed"
            self._record("preflight-not-followed", p.origin_scope, r)
            self._finish_preflight(p)

    # -- results -----------------------------------------------------------------

    def finish(self) -> Report:
        self._expire(float("inf"))
        return Report(self)


def _scope(origin: str, url: str) -> str:
    return origin_of(url)




def is_preflight(ex: Exchange) -> bool:
    """OPTIONS with ``Access-Control-Request-Method`` (#cors-preflight-request), or one
    Chrome's HAR marks ``_resourceType: "preflight"`` (its provisional headers can be
    incomplete). ``Origin`` is usually there too but some Firefox versions omit it."""
    if ex.method != "OPTIONS":
        return False
    return "access-control-request-method" in ex.request_headers or ex.resource_type == "preflight"


MAX_SCOPES = 4096


def _lru_put(table: OrderedDict, key, value) -> None:
    """Store ``value`` as the most recent entry; past ``MAX_SCOPES`` keys the least
    recently seen is forgotten, so a long live session's state stays bounded."""
    table[key] = value
    table.move_to_end(key)
    if len(table) > MAX_SCOPES:
        table.popitem(last=False)


def _lru_get(table: OrderedDict, key, make: Callable):
    """The entry for ``key`` (made by ``make`` when new), marked most recent."""
    value = table.get(key)
    if value is None:
        _lru_put(table, key, value := make())
    else:
        table.move_to_end(key)
    return value


def _bounded_set(table: OrderedDict[str, set[str]], key: str, limit: int = 16) -> set[str]:
    """A per-API-origin set that never grows past ``limit`` items."""
    values = _lru_get(table, key, set)
    if len(values) >= limit:
        values.pop()
    return values


def _bypasses_cache(ex: Exchange) -> bool:
    """What DevTools "Disable cache", a hard reload and ``cache: 'no-store'`` leave on
    a Chromium preflight: the cache was skipped for this request."""
    cc = (ex.request_headers.get("cache-control") or "").lower()
    pragma = (ex.request_headers.get("pragma") or "").lower()
    return "no-cache" in cc or "no-store" in cc or "no-cache" in pragma


def _answer_allows(answer: PreflightAnswer, method: str, headers: list[str], engine: Engine) -> bool:
    wildcard = not answer.credentials
    return method_allowed(answer, method, wildcard=wildcard) and not headers_not_allowed(
        answer, headers, wildcard=wildcard, wildcard_covers_authorization=engine.wildcard_covers_authorization
    )


def _origin_from_referer(referer: str | None) -> str | None:
    return origin_of(referer) if referer else None


_ID_SEGMENT = re.compile(
    r"^(\d+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{16,})$"
)


def url_template(url: str) -> str:
    """The endpoint a URL calls: id-like path segments and query values removed."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    path = "/".join("{id}" if _ID_SEGMENT.match(seg) else seg for seg in parts.path.split("/"))
    keys = sorted({k for k, _ in parse_qsl(parts.query, keep_blank_values=True)})
    return f"{parts.netloc}{path}?{'&'.join(keys)}"


def _differs_by_cache_buster(a: str, b: str) -> bool:
    qa = dict(parse_qsl(urlsplit(a).query, keep_blank_values=True))
    qb = dict(parse_qsl(urlsplit(b).query, keep_blank_values=True))
    changed = {k for k in qa.keys() | qb.keys() if qa.get(k) != qb.get(k)}
    return bool(changed) and changed <= CACHE_BUSTING_PARAMS


class Report:
    """Everything the writers need, computed once from a finished analysis."""

    def __init__(self, analyzer: Analyzer) -> None:
        self.engine = analyzer.engine
        self.flows = sorted(analyzer.flows, key=lambda r: (r.started, r.index))
        self.pages = list(analyzer.pages.pages.values())
        self.kinds = dict(analyzer.kinds)
        self.exchanges = analyzer.exchanges
        self.findings = [self._finding(f, analyzer.engine) for f in analyzer.findings.values()]
        order = {"error": 0, "warning": 1, "info": 2}
        self.findings.sort(key=lambda f: (order[f["severity"]], -f["count"], f["id"], f["scope"]))
        self.what_if_names = list(analyzer._what_if)
        self.incomplete: str | None = None
        """Why the report misses flows it should cover (a live session whose analysis
        could not all be recovered); None when it is whole."""

    @staticmethod
    def _finding(f: _Finding, engine: Engine) -> dict:
        ftype = FINDINGS[f.id]
        context = {
            "origin": ", ".join(sorted(f.origins)) or "https://app.example",
            "methods": ", ".join(sorted(f.methods - SAFELISTED_METHODS | {"GET", "POST"} if f.methods else {"GET", "POST"})),
            "headers": ", ".join(sorted(f.headers)) or "Content-Type",
            "max_age": str(engine.cap),
        }
        message = f"{ftype.title} — {f.count} flow{'s' if f.count != 1 else ''} to {f.scope}"
        return {
            "id": f.id,
            "severity": ftype.severity,
            "title": ftype.title,
            "scope": f.scope,
            "count": f.count,
            "flows": list(f.flows),
            "message": message,
            "example": f.example,
            "explanation": ftype.explanation,
            "basis": ftype.basis,
            "fix": render_fix(f.id, context),
        }

    @property
    def summary(self) -> dict:
        pages = self.pages
        what_if = {}
        for name in self.what_if_names:
            what_if[name] = {
                "preflights_saved": sum(int(p.what_if.get(name, {}).get("preflights_saved", 0)) for p in pages),
                "time_saved_ms": round(sum(p.what_if.get(name, {}).get("time_saved_ms", 0.0) for p in pages), 1),
            }
        summary = {
            "engine": self.engine.name,
            "exchanges": self.exchanges,
            "pages": sum(p.folded or 1 for p in pages),
            "cross_origin_requests": sum(p.cross_origin for p in pages),
            "preflights": sum(p.preflights for p in pages),
            "redundant_preflights": sum(p.redundant_preflights for p in pages),
            "blocked": sum(p.blocked for p in pages),
            "preflight_time_ms": round(sum(p.preflight_time_ms for p in pages), 1),
            "avoidable_time_ms": round(sum(p.avoidable_time_ms for p in pages), 1),
            "kinds": dict(sorted(self.kinds.items())),
            "findings": {
                sev: sum(f["count"] for f in self.findings if f["severity"] == sev)
                for sev in ("error", "warning", "info")
            },
            "what_if": what_if,
        }
        if self.incomplete:
            summary["incomplete"] = self.incomplete
        return summary

    def as_dict(self, *, include_flows: bool = True) -> dict:
        out = {
            "schema": SCHEMA,
            "generator": f"cors-addon {__version__}",
            "summary": self.summary,
            "pages": [p.as_dict() for p in self.pages],
            "findings": self.findings,
        }
        if include_flows:
            out["flows"] = [f.as_dict() for f in self.flows]
        return out
