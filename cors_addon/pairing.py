"""Pairing: each preflight with the request it authorised.

A preflight waits here from its answer until a request with its origin, full URL and
method leaves (:meth:`Pairing.take`, at the request's ``request`` hook, when every
preflight has completed: Chromium starts the actual request only after its preflight
passed), or until the pairing window has passed without one (:meth:`Pairing.expired`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from cors_addon.exchange import Exchange
from cors_addon.fetch_rules import CorsFailure, PreflightAnswer, origin_of
from cors_addon.preflight_cache import CacheEntry
from cors_addon.results import FlowResult

PAIRING_TOLERANCE = 0.05
"""HAR timestamps are rounded to the millisecond and Chrome's ``blocked`` time is
approximate, so a request may appear to leave up to 50 ms before its preflight ended."""


@dataclass(slots=True)
class Preflight:
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


class Pairing:
    def __init__(self) -> None:
        self.pending: dict[tuple[str, str], list[Preflight]] = {}
        """Preflights waiting for their request, by URL and requested method."""
        self.order: deque[Preflight] = deque()
        """The same preflights in the order they were answered, to expire them."""
        self.paired: dict[str, Preflight | None] = {}
        """Each request's preflight (or None), from its start to its completion."""

    def wait(self, p: Preflight) -> None:
        self.pending.setdefault((p.ex.url, p.method.upper()), []).append(p)
        self.order.append(p)

    def take(self, ex: Exchange, origin_hdr: str | None) -> Preflight | None:
        """Pair by origin, full URL and method == Access-Control-Request-Method, the
        preflight answered before the request left; never by connection, since
        preflights go uncredentialed on their own connections. Among candidates, one
        whose verdict agrees with what happened to the request wins, then the closest
        in time (a failed preflight, then a retry that passed, then the request).
        After a cross-origin redirect Firefox sends the new preflight with the page's
        origin but the request itself with ``Origin: null`` (seen in the browser lab),
        so a tainted request may pair with a preflight of another origin."""
        key = (ex.url, ex.method.upper())
        candidates = self.pending.get(key)
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
                del self.pending[key]
        return best

    def expired(self, horizon: float) -> Iterator[Preflight]:
        """Preflights answered before ``horizon`` that no request took, taken out: no
        request followed them within the window (a blocked one was never sent; a
        passing one was not followed)."""
        while self.order and self.order[0].ex.ended < horizon:
            p = self.order.popleft()
            key = (p.ex.url, p.method.upper())
            bucket = self.pending.get(key)
            if not bucket or p not in bucket:
                continue
            bucket.remove(p)
            if not bucket:
                del self.pending[key]
            yield p
