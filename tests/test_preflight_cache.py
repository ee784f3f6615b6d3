"""The per-engine preflight cache model."""

from cors_addon.engines import CHROMIUM, FIREFOX, WEBKIT
from cors_addon.fetch_rules import PreflightAnswer
from cors_addon.preflight_cache import CacheEntry, PreflightCache

O, U = "http://app.test", "http://api.test/items"


def entry(methods, headers, at=0.0, ttl=600.0, engine=CHROMIUM, credentials=False):
    age = engine.parse_max_age([str(int(ttl))])
    return CacheEntry("p", None, at, at + ttl, PreflightAnswer(frozenset(methods), frozenset(headers), credentials), age)


def test_chromium_replaces_the_entry_firefox_unions():
    for engine, hit in ((CHROMIUM, False), (FIREFOX, True)):
        cache = PreflightCache(engine)
        cache.store(O, U, entry({"PUT"}, set(), at=0))
        cache.store(O, U, entry({"DELETE"}, set(), at=1))
        assert cache.lookup(O, U, "PUT", [], False, 2).hit is hit, engine.name
        assert cache.lookup(O, U, "DELETE", [], False, 2).hit


def test_lookups_are_as_of_a_time():
    cache = PreflightCache(CHROMIUM)
    cache.store(O, U, entry({"PUT"}, set(), at=10, ttl=5))
    assert cache.lookup(O, U, "PUT", [], False, 9).reason == "none"
    assert cache.lookup(O, U, "PUT", [], False, 12).hit
    assert cache.lookup(O, U, "PUT", [], False, 15).reason == "expired"


def test_wildcard_and_authorization_per_engine():
    for engine, reason in ((CHROMIUM, "wildcard-authorization"), (FIREFOX, "wildcard-not-cached"), (WEBKIT, "hit")):
        cache = PreflightCache(engine)
        cache.store(O, U, entry({"PUT"}, {"*"}, engine=engine))
        assert cache.lookup(O, U, "PUT", ["authorization"], False, 1).reason == reason, engine.name
    chromium = PreflightCache(CHROMIUM)
    chromium.store(O, U, entry({"PUT"}, {"*"}))
    assert chromium.lookup(O, U, "PUT", ["x-token"], False, 1).hit


def test_uncredentialed_entry_cannot_serve_credentialed_request():
    cache = PreflightCache(CHROMIUM)
    cache.store(O, U, entry({"PUT"}, set(), credentials=False))
    assert cache.lookup(O, U, "PUT", [], True, 1).reason == "credentials"


def test_chromium_never_caches_long_urls_and_bounds_its_size():
    cache = PreflightCache(CHROMIUM)
    cache.store(O, U + "?" + "q" * 1100, entry({"PUT"}, set()))
    assert len(cache) == 0
    for i in range(2000):
        cache.store(O, f"{U}/{i}", entry({"PUT"}, set()))
    assert len(cache) == CHROMIUM.max_entries
