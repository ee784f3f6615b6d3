"""Passive checks of what a CORS answer trusts, on every response that allows an origin.

The checks only say which finding ids a response earns; the analysis counts them. Each
finding has a more severe ``-credentials`` twin when Access-Control-Allow-Credentials
is ``true``, because then the readable responses carry the user's session (Fetch,
"CORS protocol and credentials"; PortSwigger, "Exploiting CORS misconfigurations").
"""

from __future__ import annotations

from collections import OrderedDict

from cors_addon.bounded import bounded_set, lru_get
from cors_addon.exchange import Exchange
from cors_addon.fetch_rules import origin_of


class TrustChecks:
    """What each API origin has answered so far, to tell a reflected origin (two or more
    different origins echoed back) and an answer that varies without ``Vary: Origin``."""

    def __init__(self) -> None:
        self._echoed: OrderedDict[str, set[str]] = OrderedDict()
        self._allow_origins: OrderedDict[str, tuple[set[str], str]] = OrderedDict()

    def check(self, ex: Exchange, origin: str) -> list[tuple[str, tuple[str, ...]]]:
        """The finding ids this response earns, each with the ids of earlier flows that
        belong to the finding too."""
        allow = ex.response_headers.combined("access-control-allow-origin")
        if allow is None or allow == "*":
            return []
        found: list[tuple[str, tuple[str, ...]]] = []
        scope = origin_of(ex.url)
        suffix = "-credentials" if ex.response_headers.combined("access-control-allow-credentials") == "true" else ""
        if allow == "null":
            found.append(("null-origin-allowed" + suffix, ()))
        elif allow.lower().startswith("http://") and ex.url.lower().startswith("https://"):
            found.append(("insecure-origin-trusted" + suffix, ()))
        if allow == origin and origin != "null":
            echoed = bounded_set(self._echoed, scope)
            echoed.add(origin)
            if len(echoed) >= 2:
                found.append(("origin-reflected" + suffix, ()))
        values, first = lru_get(self._allow_origins, scope, lambda: (set(), ex.id))
        if len(values) < 16:
            values.add(allow)
        if len(values) >= 2:
            vary = {v.strip().lower() for v in ",".join(ex.response_headers.get_all("vary")).split(",")}
            if not vary & {"origin", "*"}:
                found.append(("missing-vary-origin" + suffix, (first,)))
        return found
