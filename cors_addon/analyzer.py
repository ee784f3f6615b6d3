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

from collections.abc import Callable, Iterable

from cors_addon.engines import Engine
from cors_addon.exchange import Exchange
from cors_addon.fetch_rules import (
    SAFELISTED_METHODS,
    CorsFailure,
    PreflightAnswer,
    check_access,
    check_redirect_location,
    cors_unsafe_header_names,
    is_redirect,
    origin_of,
)
from cors_addon.findings_book import FindingsBook
from cors_addon.pages import PageTally, PageTracker
from cors_addon.pairing import Pairing, Preflight
from cors_addon.redundancy import RedundancyModel
from cors_addon.preflight_judge import PreflightJudge
from cors_addon.report import Report
from cors_addon.results import FlowResult, set_blocked
from cors_addon.trust_checks import TrustChecks



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
        self.redundancy = RedundancyModel(engine, what_if)
        self.cache = self.redundancy.cache
        self.cors_targets: set[str] = set()
        self.trust = TrustChecks()
        self.flows: list[FlowResult] = []
        self.book = FindingsBook()
        self.findings = self.book.tallies
        self.kinds: dict[str, int] = {}
        self.exchanges = 0
        self.pairing = Pairing()
        self.preflights = PreflightJudge(self)

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
        self.pairing.paired[ex.id] = self.pairing.take(ex, ex.request_headers.get("origin"))

    def add(self, ex: Exchange) -> None:
        """A response (or error) completed: judge it. Call in completion order."""
        self.exchanges += 1
        if ex.id not in self.pairing.paired and not is_preflight(ex):
            self.begin(ex)
        page = ex.page if ex.page in self.pages.pages else self.pages.page_for(ex)
        tally = self.pages.pages[page]
        tally.requests += 1
        if is_preflight(ex):
            self.preflights.add(ex, page, tally)
        else:
            self._add_request(ex, page, tally)

    # -- preflights --------------------------------------------------------------

    # -- actual requests ---------------------------------------------------------

    def _add_request(self, ex: Exchange, page: str, tally: PageTally) -> None:
        hdrs = ex.request_headers
        p = self.pairing.paired.pop(ex.id, None)
        origin = hdrs.get("origin") or (p.origin if p else None)
        target = origin_of(ex.url)
        fetch_mode = (hdrs.get("sec-fetch-mode") or "").lower()
        if p is None and (origin is None or origin == target):
            kind = "same-origin" if origin == target or hdrs.get("sec-fetch-site") == "same-origin" else "not-cors"
            self.finish_result(self.result_for(ex, page, origin, kind))
            return
        if p is None and fetch_mode and fetch_mode != "cors":
            self.finish_result(self.result_for(ex, page, origin, "not-cors"))
            return
        tally.cross_origin += 1
        self.cors_targets.add(target)
        credentials = "include" if "cookie" in hdrs else None
        if p is None:
            unsafe = cors_unsafe_header_names(hdrs, chromium_extras=self.engine.chromium_extras, wire=True)
            needs_preflight = ex.method not in SAFELISTED_METHODS or bool(unsafe)
        else:
            needs_preflight = True
        result = self.result_for(ex, page, origin, "preflighted" if p or needs_preflight else "simple")
        result.credentials = credentials
        if p is not None:
            self._pair(p, ex, result, tally)
        elif needs_preflight:
            lookup = self.cache.lookup(origin, ex.url, ex.method, unsafe, credentials == "include", ex.wire_start)
            if lookup.hit and lookup.entry is not None:
                result.cache_hit = True
                result.notes.append(f"preflight answered from the cache ({lookup.entry.preflight_id})")
                if lookup.entry.page != page:
                    self.book.record("cache-carried-over", _scope(origin, ex.url), result,
                                 extra_flows=[lookup.entry.preflight_id])
            else:
                self.book.record("preflight-not-recorded", _scope(origin, ex.url), result)
        if ex.has_response:
            self.check_trust(ex, origin, result)
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
        self.finish_result(result)

    def _pair(self, p: Preflight, ex: Exchange, result: FlowResult, tally: PageTally) -> None:
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
                set_blocked(result, failure, ex)
                if not p.early_blocked:
                    set_blocked(pr, failure, p.ex)
                    pr.credentials = result.credentials = "include"
                    pr.notes.append("fails only with credentials: 'include'")
                pr.never_sent = True
                self.preflights.finish(p, record=False)
            elif not p.ex.has_response:
                set_blocked(result, None, p.ex)
                self.preflights.finish(p, record=False)
            else:
                result.verdict = "unknown"
                result.message = ex.error or "no response"
                self.preflights.finish(p, record=False)
            return
        if p.early_blocked:
            pr.verdict, pr.cors_error, pr.failed_parameter, pr.never_sent = "ok", None, None, False
            pr.notes.append("the browser sent the request although these rules reject the preflight")
            self.book.record("engine-disagreement", p.origin_scope, pr)
        if result.credentials is None:
            result.credentials = "omit" if isinstance(p.omit, PreflightAnswer) and not isinstance(p.include, PreflightAnswer) else None
        elif result.credentials == "include" and p.entry is not None:
            p.entry.answer = PreflightAnswer(p.entry.answer.methods, p.entry.answer.headers, True)
        pr.credentials = result.credentials
        self.preflights.finish(p, record=False)

    def _judge_response(self, ex: Exchange, result: FlowResult, origin: str, p: Preflight | None) -> None:
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
            set_blocked(result, failure, ex)

    # -- security ----------------------------------------------------------------

    def check_trust(self, ex: Exchange, origin: str, result: FlowResult) -> None:
        for fid, extra_flows in self.trust.check(ex, origin):
            self.book.record(fid, origin_of(ex.url), result, extra_flows=extra_flows)

    # -- bookkeeping -------------------------------------------------------------

    def result_for(self, ex: Exchange, page: str, origin: str | None, kind: str) -> FlowResult:
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        return FlowResult(
            id=ex.id, index=ex.source_index, page=page, method=ex.method, url=ex.url,
            origin=origin, status=ex.status, kind=kind, started=ex.started, duration_ms=ex.duration_ms,
        )

    def finish_result(self, result: FlowResult, *, record: bool = True) -> None:
        """A flow's result is final: its blocked verdict counted as a finding, kept for a
        per-flow report, handed to ``on_result``."""
        if record and result.verdict == "blocked":
            fid = result.cors_error or "preflight-network-error"
            f = self.book.record(fid, _scope(result.origin or "", result.url), result)
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

    def _expire(self, horizon: float) -> None:
        for p in self.pairing.expired(horizon):
            self.preflights.finish_unfollowed(p)

    # -- results -----------------------------------------------------------------

    @property
    def what_if_names(self) -> list[str]:
        """The what-if Max-Age values replayed, as the report names them (``max_age_600``)."""
        return list(self.redundancy.what_if)

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


