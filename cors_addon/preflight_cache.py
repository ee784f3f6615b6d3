"""A model of one engine's CORS-preflight cache (Fetch #cors-preflight-cache).

Exchanges reach the analyser in completion order, so a preflight that started while
another was in flight is processed after it. Every key therefore keeps a short history
of stored answers and lookups ask "what did the cache hold at time t", not "what does
it hold now". Memory stays bounded: the number of keys follows the engine's own limit
(Chromium 1024, Firefox 100) and each key keeps at most ``HISTORY`` answers.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from cors_addon.engines import Engine, MaxAge
from cors_addon.fetch_rules import PreflightAnswer

HISTORY = 8


@dataclass(slots=True)
class CacheEntry:
    preflight_id: str
    page: str | None
    stored_at: float
    expires_at: float
    answer: PreflightAnswer
    max_age: MaxAge


@dataclass(frozen=True, slots=True)
class Lookup:
    hit: bool
    reason: str
    """``hit``, ``none`` (nothing stored), ``expired``, ``not-covered``,
    ``wildcard-authorization``, ``wildcard-not-cached``, ``credentials`` or
    ``url-too-long``."""
    entry: CacheEntry | None = None


class PreflightCache:
    def __init__(self, engine: Engine, *, max_keys: int | None = None, every_url: bool = False) -> None:
        self.engine = engine
        self.max_keys = max_keys or engine.max_entries
        self._url_limit = None if every_url else engine.max_url_length
        self._entries: OrderedDict[tuple, list[CacheEntry]] = OrderedDict()

    def _key(self, origin: str, url: str, credentials: bool) -> tuple:
        if self.engine.credentials_in_key:
            return (origin, url, credentials)
        return (origin, url)

    def store(self, origin: str, url: str, entry: CacheEntry) -> None:
        if self._url_limit and len(url) >= self._url_limit:
            return
        key = self._key(origin, url, entry.answer.credentials)
        history = self._entries.get(key)
        if history is None:
            history = self._entries[key] = []
            if len(self._entries) > self.max_keys:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(key)
        history.append(entry)
        history.sort(key=lambda e: e.stored_at)
        del history[:-HISTORY]

    def lookup(
        self,
        origin: str,
        url: str,
        method: str,
        unsafe_headers: list[str],
        credentials: bool,
        at: float,
    ) -> Lookup:
        """Would the engine have skipped the preflight at time ``at``?"""
        if self._url_limit and len(url) >= self._url_limit:
            return Lookup(False, "url-too-long")
        history = self._entries.get(self._key(origin, url, credentials), ())
        stored = [e for e in history if e.stored_at <= at]
        if not stored:
            return Lookup(False, "none")
        if self.engine.replaces_entries:
            return self._lookup_replaced(stored[-1], method, unsafe_headers, credentials, at)
        return self._lookup_union(stored, method, unsafe_headers, at)

    def _lookup_replaced(
        self, entry: CacheEntry, method: str, unsafe: list[str], credentials: bool, at: float
    ) -> Lookup:
        """Chromium and WebKit: the newest answer for the key decides alone."""
        if entry.expires_at <= at:
            return Lookup(False, "expired", entry)
        if credentials and not entry.answer.credentials:
            return Lookup(False, "credentials", entry)
        wildcard = not entry.answer.credentials
        if not _method_cached(entry.answer, method, wildcard, self.engine.cache_exempt_methods):
            return Lookup(False, "not-covered", entry)
        star = wildcard and "*" in entry.answer.headers
        for name in unsafe:
            if name in entry.answer.headers:
                continue
            if star and name != "authorization":
                continue
            if star and self.engine.cache_wildcard == "all":
                continue
            reason = "wildcard-authorization" if star else "not-covered"
            return Lookup(False, reason, entry)
        return Lookup(True, "hit", entry)

    def _lookup_union(
        self, stored: list[CacheEntry], method: str, unsafe: list[str], at: float
    ) -> Lookup:
        """Firefox: each method and header token has its own expiry and tokens are
        compared literally, so a cached ``*`` never produces a hit."""
        live = [e for e in stored if e.expires_at > at]
        if not live:
            return Lookup(False, "expired", stored[-1])
        if method not in self.engine.cache_exempt_methods and not any(
            method in e.answer.methods for e in live
        ):
            star = any("*" in e.answer.methods for e in live)
            return Lookup(False, "wildcard-not-cached" if star else "not-covered", live[-1])
        for name in unsafe:
            if not any(name in e.answer.headers for e in live):
                star = any("*" in e.answer.headers for e in live)
                return Lookup(False, "wildcard-not-cached" if star else "not-covered", live[-1])
        return Lookup(True, "hit", live[-1])

    def history(self, origin: str, url: str, credentials: bool) -> list[CacheEntry]:
        return list(self._entries.get(self._key(origin, url, credentials), ()))

    def __len__(self) -> int:
        return len(self._entries)


def _method_cached(
    answer: PreflightAnswer, method: str, wildcard: bool, exempt: frozenset[str]
) -> bool:
    if method in exempt or method in answer.methods:
        return True
    return wildcard and "*" in answer.methods
