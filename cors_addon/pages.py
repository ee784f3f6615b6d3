"""Which page load each exchange belongs to.

Browser HARs say it with ``pages``/``pageref``. Proxy captures (mitmproxy's
``pages: []``, live flows) do not, so page loads are inferred from top-level document
navigations (``Sec-Fetch-Dest: document`` + ``Sec-Fetch-Mode: navigate``) and each
later request is given to the page its ``Referer`` names, else to the newest page.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from cors_addon.exchange import Exchange
from cors_addon.sources.har import parse_time

IMPLICIT_PAGE = "page_0"
MAX_REMEMBERED_URLS = 4096
FOLDED_PAGE = "earlier_pages"
"""With ``max_pages``, the tally that the oldest page loads are folded into."""


@dataclass(slots=True)
class PageTally:
    id: str
    url: str
    started: float = 0.0
    requests: int = 0
    cross_origin: int = 0
    preflights: int = 0
    redundant_preflights: int = 0
    blocked: int = 0
    preflight_time_ms: float = 0.0
    avoidable_time_ms: float = 0.0
    what_if: dict[str, dict[str, float]] = field(default_factory=dict)
    folded: int = 0
    """How many page loads this tally sums (``FOLDED_PAGE`` only; 0 for a page)."""

    def as_dict(self) -> dict:
        out = {
            "id": self.id,
            "url": self.url,
            "requests": self.requests,
            "cross_origin_requests": self.cross_origin,
            "preflights": self.preflights,
            "redundant_preflights": self.redundant_preflights,
            "blocked": self.blocked,
            "preflight_time_ms": round(self.preflight_time_ms, 1),
            "avoidable_time_ms": round(self.avoidable_time_ms, 1),
            "what_if": {
                k: {"preflights_saved": int(v["preflights_saved"]), "time_saved_ms": round(v["time_saved_ms"], 1)}
                for k, v in self.what_if.items()
            },
        }
        if self.folded:
            out["folded_pages"] = self.folded
        return out

    def absorb(self, other: PageTally) -> None:
        self.requests += other.requests
        self.cross_origin += other.cross_origin
        self.preflights += other.preflights
        self.redundant_preflights += other.redundant_preflights
        self.blocked += other.blocked
        self.preflight_time_ms += other.preflight_time_ms
        self.avoidable_time_ms += other.avoidable_time_ms
        for name, slot in other.what_if.items():
            mine = self.what_if.setdefault(name, {"preflights_saved": 0, "time_saved_ms": 0.0})
            mine["preflights_saved"] += slot["preflights_saved"]
            mine["time_saved_ms"] += slot["time_saved_ms"]
        self.folded += other.folded or 1


class _Pages(dict):
    """Tallies by page id. Once pages have been folded, an id that is no longer here
    (a page folded away) is answered with the folded tally."""

    folded: PageTally | None = None

    def __missing__(self, key: str) -> PageTally:
        if self.folded is not None:
            return self.folded
        raise KeyError(key)


def is_navigation(ex: Exchange) -> bool:
    dest = (ex.request_headers.get("sec-fetch-dest") or "").lower()
    mode = (ex.request_headers.get("sec-fetch-mode") or "").lower()
    if dest or mode:
        return dest == "document" and mode == "navigate"
    return ex.resource_type == "document" and ex.method == "GET"


class PageTracker:
    def __init__(self, declared: list[dict] | None = None, *, max_pages: int | None = None) -> None:
        """``max_pages``: keep at most this many page tallies, folding the oldest into
        one ``FOLDED_PAGE`` tally (totals stay exact): the live addon's bound when no
        per-page report was asked for."""
        self.pages: dict[str, PageTally] = _Pages()
        self.max_pages = max_pages
        self._evicted = 0
        self._implicit_evicted = False
        self._by_url: OrderedDict[str, str] = OrderedDict()
        self._current: str | None = None
        self._declared = bool(declared)
        for page in declared or []:
            pid = str(page.get("id"))
            started = parse_time(page.get("startedDateTime")) or 0.0
            self.pages[pid] = PageTally(pid, str(page.get("title") or pid), started)

    def assign(self, ex: Exchange) -> str:
        """Give ``ex`` its page; call in *start* order, before analysis."""
        ex.page = self.page_for(ex)
        return ex.page

    def page_for(self, ex: Exchange) -> str:
        if self._declared and ex.pageref in self.pages:
            return ex.pageref  # type: ignore[return-value]
        if ex.pageref and not self._declared:
            return self._ensure(ex.pageref, ex.pageref, ex.started)
        if is_navigation(ex):
            implicit = IMPLICIT_PAGE in self.pages or self._implicit_evicted
            folded = self.pages.folded is not None  # type: ignore[attr-defined]
            pid = f"page_{len(self.pages) - folded + self._evicted + (0 if implicit else 1)}"
            while pid in self.pages:
                pid += "_"
            self._ensure(pid, ex.url, ex.started)
            self._remember(ex.url, pid)
            self._current = pid
            return pid
        referer = ex.request_headers.get("referer")
        if referer and referer in self._by_url:
            return self._by_url[referer]
        if self._current is None:
            self._current = self._ensure(IMPLICIT_PAGE, referer or "(no navigation recorded)", ex.started)
        return self._current

    def _ensure(self, pid: str, url: str, started: float) -> str:
        if pid not in self.pages:
            self.pages[pid] = PageTally(pid, url, started)
            folded = self.pages.folded is not None  # type: ignore[attr-defined]
            if self.max_pages is not None and len(self.pages) - folded > self.max_pages:
                self._fold_oldest(keep=pid)
        return pid

    def _fold_oldest(self, keep: str) -> None:
        pages = self.pages
        folded = pages.folded  # type: ignore[attr-defined]
        if folded is None:
            first = next(iter(pages.values()))
            folded = PageTally(FOLDED_PAGE, "(earlier page loads)", first.started)
            items = list(pages.items())
            pages.clear()
            pages[FOLDED_PAGE] = folded
            pages.update(items)
            pages.folded = folded  # type: ignore[attr-defined]
        for pid in pages:
            if pid not in (FOLDED_PAGE, keep, self._current):
                break
        else:
            return
        folded.absorb(pages.pop(pid))
        self._evicted += 1
        self._implicit_evicted |= pid == IMPLICIT_PAGE

    def _remember(self, url: str, pid: str) -> None:
        self._by_url[url] = pid
        self._by_url.move_to_end(url)
        if len(self._by_url) > MAX_REMEMBERED_URLS:
            self._by_url.popitem(last=False)
