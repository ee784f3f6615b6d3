"""The one normalised exchange model every source is turned into.

Live mitmproxy flows, HAR entries (Chrome, Firefox, mitmproxy, proxies) and ``.mitm``
files all become :class:`Exchange` objects, so rules, pairing and tallies never look
at a source format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cors_addon.headers import Headers


@dataclass(slots=True)
class Exchange:
    id: str
    method: str
    url: str
    request_headers: Headers
    status: int = 0
    response_headers: Headers = field(default_factory=Headers)
    error: str | None = None
    started: float = 0.0
    """Epoch seconds when the request was issued (HAR ``startedDateTime``)."""
    wire_start: float = 0.0
    """When the request left for the network. Chrome's HAR puts the preflight's
    duration into the actual request's ``blocked`` time, so ``started + blocked`` is
    when the actual request really went out, after its preflight."""
    ended: float = 0.0
    duration_ms: float = 0.0
    pageref: str | None = None
    """The page the source itself names (HAR ``pageref``)."""
    page: str | None = None
    """The page load this exchange was assigned to (by :class:`PageTracker` before an
    analysis, or by the live addon); a source's ``pageref`` is never overwritten, so
    analysing the same exchanges twice gives the same pages."""
    resource_type: str | None = None
    initiator_type: str | None = None
    http_version: str = ""
    source_index: int = -1
    """Position in the source (HAR entry index), for annotating the original."""
    from_cache: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def has_response(self) -> bool:
        """A status of 0 is how every exporter writes "no response arrived"."""
        return self.status > 0
