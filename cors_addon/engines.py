"""Browser engine profiles: where Chromium, Firefox and WebKit depart from the spec.

The spec leaves the Max-Age cap to the user agent and engines parse the header and
key their preflight caches differently, so each engine is modelled on its own and the
user picks one (``--browser``). Sources: Chromium ``services/network/cors/
preflight_result.cc`` and ``preflight_cache.cc``; Firefox ``nsCORSListenerProxy.cpp``;
WebKit ``CrossOriginPreflightResultCache.cpp`` (see ``shared/reference/cors-semantics.md``
section 7.2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

INT64_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True)
class MaxAge:
    """The lifetime an engine gives a preflight answer, and why."""

    seconds: float
    reason: str
    """``absent`` (5 s default), ``valid``, ``zero``, ``negative``, ``invalid``,
    ``capped`` (above the engine's limit) or ``overflow``."""
    raw: str | None


@dataclass(frozen=True, slots=True)
class Engine:
    name: str
    cap: int
    default: int
    replaces_entries: bool
    """Chromium and WebKit keep one result per (origin, URL) and a new preflight
    replaces it; Firefox and the spec keep one entry per method and header (union)."""
    credentials_in_key: bool
    """Firefox keys ``cred``/``nocred`` apart; Chromium lets a credentialed result
    serve an uncredentialed request, not the reverse."""
    cache_wildcard: str
    """How a cached ``*`` in Allow-Headers is honoured: ``except-authorization``
    (Chromium's cache lookup always uses the spec's non-wildcard variant), ``all``
    (WebKit) or ``never`` (Firefox stores ``*`` as a literal token)."""
    wildcard_covers_authorization: bool
    """Whether the preflight *check* lets ``*`` cover ``Authorization``. The spec says
    no; Chromium (kCorsNonWildcardRequestHeadersSupport off), Firefox (pref
    network.cors_preflight.authorization_covered_by_wildcard) and WebKit say yes."""
    chromium_extras: bool
    max_entries: int
    max_url_length: int | None = None
    cache_exempt_methods: frozenset[str] = frozenset({"GET", "HEAD", "POST"})

    def parse_max_age(self, values: list[str]) -> MaxAge:
        raw = ", ".join(values) if values else None
        return _PARSERS[self.name](self, raw)


def _chromium(engine: Engine, raw: str | None) -> MaxAge:
    """``ParseAccessControlMaxAge``: ``base::StringToInt64`` (a leading ``+`` is
    skipped, anything else non-digit fails, overflow fails) on the joined header; a
    failure gives the 5 s default, a value <= 0 gives 0, and 7200 s is the cap."""
    if raw is None or raw.strip() == "":
        return MaxAge(engine.default, "absent", raw)
    value = raw.strip(" \t")
    if not re.fullmatch(r"[+-]?\d+", value):
        return MaxAge(engine.default, "invalid", raw)
    number = int(value)
    if number > INT64_MAX or number < -INT64_MAX - 1:
        return MaxAge(engine.default, "overflow", raw)
    if number < 0:
        return MaxAge(0, "negative", raw)
    if number == 0:
        return MaxAge(0, "zero", raw)
    if number > engine.cap:
        return MaxAge(engine.cap, "capped", raw)
    return MaxAge(number, "valid", raw)


def _firefox(engine: Engine, raw: str | None) -> MaxAge:
    """``nsCORSPreflightListener::AddResultToCache`` reads digits one by one, stopping
    at the 86400 s cap; any non-digit (``-1``, ``+600``, ``abc``, two joined lines)
    means the answer is not cached at all, and so does 0."""
    if raw is None or raw.strip() == "":
        return MaxAge(engine.default, "absent", raw)
    value = raw.strip(" \t")
    if not value.isdigit() or not value.isascii():
        reason = "negative" if re.fullmatch(r"-\d+", value) else "invalid"
        return MaxAge(0, reason, raw)
    number = int(value)
    if number == 0:
        return MaxAge(0, "zero", raw)
    if number > engine.cap:
        return MaxAge(engine.cap, "capped", raw)
    return MaxAge(number, "valid", raw)


def _webkit(engine: Engine, raw: str | None) -> MaxAge:
    """``parseAccessControlMaxAge`` uses ``parseInteger`` (sign allowed, overflow
    fails): a failure gives 5 s, a negative value is already expired, 600 s is the
    cap."""
    if raw is None or raw.strip() == "":
        return MaxAge(engine.default, "absent", raw)
    value = raw.strip()
    if not re.fullmatch(r"[+-]?\d+", value):
        return MaxAge(engine.default, "invalid", raw)
    number = int(value)
    if number > INT64_MAX or number < -INT64_MAX - 1:
        return MaxAge(engine.default, "overflow", raw)
    if number < 0:
        return MaxAge(0, "negative", raw)
    if number == 0:
        return MaxAge(0, "zero", raw)
    if number > engine.cap:
        return MaxAge(engine.cap, "capped", raw)
    return MaxAge(number, "valid", raw)


_PARSERS = {"chromium": _chromium, "firefox": _firefox, "webkit": _webkit}

CHROMIUM = Engine(
    name="chromium",
    cap=7200,
    default=5,
    replaces_entries=True,
    credentials_in_key=False,
    cache_wildcard="except-authorization",
    wildcard_covers_authorization=True,
    chromium_extras=True,
    max_entries=1024,
    max_url_length=1024,
)
FIREFOX = Engine(
    name="firefox",
    cap=86400,
    default=5,
    replaces_entries=False,
    credentials_in_key=True,
    cache_wildcard="never",
    wildcard_covers_authorization=True,
    chromium_extras=False,
    max_entries=100,
    cache_exempt_methods=frozenset({"GET", "POST"}),
)
WEBKIT = Engine(
    name="webkit",
    cap=600,
    default=5,
    replaces_entries=True,
    credentials_in_key=False,
    cache_wildcard="all",
    wildcard_covers_authorization=True,
    chromium_extras=False,
    max_entries=1 << 30,
)

ENGINES = {e.name: e for e in (CHROMIUM, FIREFOX, WEBKIT)}


def get_engine(name: str) -> Engine:
    try:
        return ENGINES[name.lower()]
    except KeyError:
        raise ValueError(
            f"unknown browser {name!r}: choose one of {', '.join(ENGINES)}"
        ) from None
