"""The preflight's side of the analysis: each answer judged under both credentials
modes the moment it arrives (a failing one is BLOCKED at once, and its request was
never sent), its redundancy settled once the request it authorised shows which mode
applied, and a preflight no request followed finished for what it was."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cors_addon.exchange import Exchange
from cors_addon.fetch_rules import (
    CorsFailure,
    PreflightAnswer,
    check_preflight,
    origin_of,
    parse_header_list,
    parse_request_header_names,
)
from cors_addon.pages import PageTally
from cors_addon.pairing import Preflight
from cors_addon.preflight_cache import CacheEntry
from cors_addon.redundancy import bypasses_cache
from cors_addon.results import set_blocked

if TYPE_CHECKING:
    from cors_addon.analyzer import Analyzer


def origin_from_referer(referer: str | None) -> str | None:
    return origin_of(referer) if referer else None


class PreflightJudge:
    def __init__(self, analysis: Analyzer) -> None:
        self.analysis = analysis

    def add(self, ex: Exchange, page: str, tally: PageTally) -> None:
        hdrs = ex.request_headers
        origin = hdrs.get("origin") or origin_from_referer(hdrs.get("referer")) or "null"
        method = (hdrs.get("access-control-request-method") or "").strip()
        requested = parse_request_header_names(hdrs.combined("access-control-request-headers"))
        result = self.analysis.result_for(ex, page, origin, "preflight")
        result.requested = {"method": method, "headers": requested}
        tally.preflights += 1
        tally.cross_origin += 1
        tally.preflight_time_ms += ex.duration_ms
        age = self.analysis.engine.parse_max_age(ex.response_headers.get_all("access-control-max-age"))
        if ex.has_response:
            result.max_age = {"raw": age.raw, "seconds": age.seconds, "reason": age.reason}
            omit, include = (
                check_preflight(
                    ex.status, ex.response_headers, origin, method, requested, cred,
                    wildcard_covers_authorization=self.analysis.engine.wildcard_covers_authorization,
                )
                for cred in (False, True)
            )
            self.analysis.check_trust(ex, origin, result)
        else:
            omit = include = None
        p = Preflight(ex, result, origin, method, requested, omit, include)
        result.allowed = (
            [m for m in parse_header_list(ex.response_headers.combined("access-control-allow-methods")) or () if m != "*"],
            [h.lower() for h in parse_header_list(ex.response_headers.combined("access-control-allow-headers")) or ()
             if h != "*"],
        )
        self.analysis.redundancy.judge(p)
        answer = include if isinstance(include, PreflightAnswer) else omit
        if isinstance(answer, PreflightAnswer):
            stored = PreflightAnswer(answer.methods, answer.headers, False)
            p.entry = CacheEntry(ex.id, page, ex.ended, ex.ended + age.seconds, stored, age)
            self.analysis.redundancy.store(origin, ex.url, p.entry, bypassed=bypasses_cache(ex))
        self.analysis.redundancy.run_what_if(p, tally)
        self.analysis.pairing.wait(p)
        if not isinstance(omit, PreflightAnswer) and not isinstance(include, PreflightAnswer):
            p.early_blocked = True
            set_blocked(result, omit, ex)
            result.never_sent = True
            if self.analysis.on_blocked:
                self.analysis.on_blocked(result)

    def settle(self, p: Preflight) -> None:
        """Record the preflight's redundancy under the credentials mode of the request
        it authorised: an uncredentialed answer cannot serve a credentialed request, so
        asking again for one is not redundant (Fetch #cors-preflight-cache, match)."""
        repeat = p.repeats.get(p.result.credentials == "include")
        if repeat is not None:
            earlier, cause = repeat
            tally = self.analysis.pages.pages[p.result.page]
            p.result.redundant = True
            p.result.cause = cause
            gap = p.ex.wire_start - earlier.stored_at
            p.result.notes.append(f"same question answered by {earlier.preflight_id} {gap:.1f}s earlier")
            tally.redundant_preflights += 1
            tally.avoidable_time_ms += p.ex.duration_ms
            f = self.analysis.book.record("redundant-" + cause, p.origin_scope, p.result)
            f.methods.update(earlier.answer.methods - {"*"} | {p.method})
            f.headers.update(earlier.answer.headers - {"*"} | set(p.headers))
        elif p.parallel:
            p.result.notes.append("parallel: sent before an identical preflight was answered")
            self.analysis.book.record("parallel-preflights", p.origin_scope, p.result, extra_flows=p.parallel)
        elif p.per_url:
            fid, url, other = p.per_url
            p.result.notes.append(f"same endpoint as {url}: the preflight cache is keyed by full URL")
            self.analysis.book.record(fid, p.origin_scope, p.result, extra_flows=[other])

    def finish(self, p: Preflight, *, record: bool = True) -> None:
        self.settle(p)
        self.analysis.finish_result(p.result, record=record)

    def finish_unfollowed(self, p: Preflight) -> None:
        r = p.result
        tally = self.analysis.pages.pages[r.page]
        if p.early_blocked:
            tally.blocked += 1
            if not r.credentials and isinstance(p.include, CorsFailure) and p.include != p.omit and p.omit:
                r.notes.append(f"with credentials: 'include' it fails as {p.include.error}")
            self.finish(p)
        elif isinstance(p.include, CorsFailure) and origin_of(p.ex.url) not in self.analysis.cors_targets:
            r.verdict = "unknown"
            r.message = "no request followed, and the recording holds no request to this origin (filtered export?)"
            r.notes.append(f"passes without credentials; with credentials: 'include' it fails as {p.include.error}")
            self.finish(p)
        elif isinstance(p.include, CorsFailure):
            set_blocked(r, p.include, p.ex)
            r.never_sent = True
            r.credentials = "include"
            r.notes.append("passes without credentials, fails with credentials: 'include'; no request followed")
            tally.blocked += 1
            if self.analysis.on_blocked:
                self.analysis.on_blocked(r)
            self.finish(p)
        else:
            r.verdict = "unknown"
            r.message = "the preflight passed but no request followed"
            self.analysis.book.record("preflight-not-followed", p.origin_scope, r)
            self.finish(p)
