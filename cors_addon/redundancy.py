"""The redundancy model: was a preflight a question the browser had already had
answered, why did it ask again, and what would a longer Max-Age have saved?

It keeps the engine's own preflight cache (what the browser could reuse), every
successful answer whether cached or not (what had been answered), the recent
preflights per URL (parallel duplicates), one URL per endpoint template (per-URL
cache keys), and one cache per what-if Max-Age. Every table is bounded.
"""

from __future__ import annotations

import re
from collections import OrderedDict, deque
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

from cors_addon.bounded import lru_get, lru_put
from cors_addon.engines import Engine
from cors_addon.exchange import Exchange
from cors_addon.fetch_rules import PreflightAnswer, headers_not_allowed, method_allowed
from cors_addon.pages import PageTally
from cors_addon.preflight_cache import CacheEntry, PreflightCache

if TYPE_CHECKING:
    from cors_addon.analyzer import Preflight

REDUNDANCY_HORIZON = 86400.0
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


class RedundancyModel:
    def __init__(self, engine: Engine, what_if: Iterable[int] = ()) -> None:
        self.engine = engine
        self.cache = PreflightCache(engine)
        self.answers = PreflightCache(engine, max_keys=4096, every_url=True)
        """Every successful answer, whether or not the engine cached it: redundancy
        asks whether the same question was already answered."""
        self._recent: OrderedDict[tuple[str, str], deque[tuple[float, float, str, tuple, str]]] = OrderedDict()
        self._templates: OrderedDict[tuple[str, str], tuple[str, CacheEntry]] = OrderedDict()
        caps = sorted({int(s) for s in what_if} | {engine.cap})
        self.what_if = {f"max_age_{s}": (s, PreflightCache(engine)) for s in caps}

    def store(self, origin: str, url: str, entry: CacheEntry, *, bypassed: bool) -> None:
        """A successful answer: in the engine's cache (unless the request bypassed it),
        among the answers, and as its endpoint's example."""
        if not bypassed:
            self.cache.store(origin, url, entry)
        self.answers.store(origin, url, entry)
        self._remember_template(origin, url, entry)

    def judge(self, p: Preflight) -> None:
        """Work out, at the moment the preflight was sent, whether the same question
        had already been answered, for either credentials mode: which mode applies is
        only known once the request it authorised is seen (the analysis's ``_settle``)."""
        ex, at = p.ex, p.ex.wire_start
        key = (p.origin, ex.url)
        recent = lru_get(self._recent, key, lambda: deque(maxlen=8))
        p.parallel = [r[4] for r in recent if r[0] <= at < r[1] and r[2:4] == (p.method, tuple(p.headers))]
        recent.append((ex.wire_start, ex.ended, p.method, tuple(p.headers), ex.id))
        for credentials in (False, True):
            earlier = self._allowed_before(p, at, credentials)
            if earlier is not None:
                p.repeats[credentials] = (earlier, self._repeat_cause(p, earlier, credentials))
        if not p.parallel and not p.repeats:
            p.per_url = self._check_per_url(p)

    def _repeat_cause(self, p: Preflight, earlier: CacheEntry, credentials: bool) -> str:
        if bypasses_cache(p.ex):
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

    def _allowed_before(self, p: Preflight, at: float, credentials: bool) -> CacheEntry | None:
        """The newest earlier successful answer for this origin and URL that already
        allowed this method and these headers (and, for a credentialed request, was
        itself credentialed): the browser asked the same question again."""
        history = self.answers.history(p.origin, p.ex.url, credentials)
        for entry in reversed(history):
            if entry.stored_at > at or at - entry.stored_at > REDUNDANCY_HORIZON:
                continue
            if credentials and not entry.answer.credentials:
                continue
            if answer_allows(entry.answer, p.method, p.headers, self.engine):
                return entry
        return None

    def _check_per_url(self, p: Preflight) -> tuple[str, str, str] | None:
        """Preflights whose URLs differ only by query or an id-like path segment: a
        per-origin cache would have answered them, the per-URL one cannot."""
        seen = self._templates.get((p.origin, url_template(p.ex.url)))
        if seen is None:
            return None
        url, entry = seen
        if url == p.ex.url or p.ex.wire_start - entry.stored_at > self.engine.cap:
            return None
        if not answer_allows(entry.answer, p.method, p.headers, self.engine):
            return None
        fid = "cache-busting-parameter" if differs_by_cache_buster(url, p.ex.url) else "per-url-cache-key"
        return fid, url, entry.preflight_id

    def _remember_template(self, origin: str, url: str, entry: CacheEntry) -> None:
        lru_put(self._templates, (origin, url_template(url)), (url, entry))

    def run_what_if(self, p: Preflight, tally: PageTally) -> None:
        """Replay this preflight against a cache whose answers carried Max-Age ``s``:
        would the browser have skipped it? Failed answers, cache bypasses and repeats
        the real answer already covered cannot be fixed by Max-Age and are never
        counted as saved."""
        if p.entry is None or bypasses_cache(p.ex):
            return
        already_cached = self.cache.lookup(p.origin, p.ex.url, p.method, p.headers, False, p.ex.wire_start).hit
        for name, (seconds, cache) in self.what_if.items():
            hit = cache.lookup(p.origin, p.ex.url, p.method, p.headers, False, p.ex.wire_start).hit
            slot = tally.what_if.setdefault(name, {"preflights_saved": 0, "time_saved_ms": 0.0})
            if hit and not already_cached:
                slot["preflights_saved"] += 1
                slot["time_saved_ms"] += p.ex.duration_ms
                continue
            age = self.engine.parse_max_age([str(seconds)])
            cache.store(p.origin, p.ex.url, CacheEntry(
                p.ex.id, p.result.page, p.ex.ended, p.ex.ended + age.seconds, p.entry.answer, age))


def bypasses_cache(ex: Exchange) -> bool:
    """What DevTools "Disable cache", a hard reload and ``cache: 'no-store'`` leave on
    a Chromium preflight: the cache was skipped for this request."""
    cc = (ex.request_headers.get("cache-control") or "").lower()
    pragma = (ex.request_headers.get("pragma") or "").lower()
    return "no-cache" in cc or "no-store" in cc or "no-cache" in pragma


def answer_allows(answer: PreflightAnswer, method: str, headers: list[str], engine: Engine) -> bool:
    wildcard = not answer.credentials
    return method_allowed(answer, method, wildcard=wildcard) and not headers_not_allowed(
        answer, headers, wildcard=wildcard, wildcard_covers_authorization=engine.wildcard_covers_authorization
    )


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


def differs_by_cache_buster(a: str, b: str) -> bool:
    qa = dict(parse_qsl(urlsplit(a).query, keep_blank_values=True))
    qb = dict(parse_qsl(urlsplit(b).query, keep_blank_values=True))
    changed = {k for k in qa.keys() | qb.keys() if qa.get(k) != qb.get(k)}
    return bool(changed) and changed <= CACHE_BUSTING_PARAMS
