"""What the analysis finds, as it finds it: one result per flow, one tally per finding.

Plain records with no behaviour of their own beyond their JSON form, so that the
engine (:mod:`cors_addon.analyzer`), the report (:mod:`cors_addon.report`) and the
writers can all read them without depending on each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cors_addon.catalogue import console_text
from cors_addon.fetch_rules import CorsFailure


@dataclass(slots=True)
class FlowResult:
    id: str
    index: int
    page: str
    method: str
    url: str
    origin: str | None
    status: int
    kind: str
    started: float
    duration_ms: float
    requested: dict | None = None
    pair: str | None = None
    verdict: str = "ok"
    cors_error: str | None = None
    failed_parameter: str | None = None
    message: str | None = None
    never_sent: bool = False
    redundant: bool = False
    cause: str | None = None
    credentials: str | None = None
    cache_hit: bool = False
    max_age: dict | None = None
    notes: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    allowed: tuple[list[str], list[str]] | None = None
    """What the deciding preflight answer already allowed (methods, headers), so a fix
    can name the full list to send; not part of the JSON flow record."""

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "page": self.page,
            "method": self.method,
            "url": self.url,
            "origin": self.origin,
            "status": self.status,
            "kind": self.kind,
            "started": self.started,
            "duration_ms": round(self.duration_ms, 1),
            "requested": self.requested,
            "pair": self.pair,
            "verdict": self.verdict,
            "cors_error": self.cors_error,
            "failed_parameter": self.failed_parameter,
            "message": self.message,
            "never_sent": self.never_sent,
            "redundant": self.redundant,
            "cause": self.cause,
            "credentials": self.credentials,
            "cache_hit": self.cache_hit,
            "max_age": self.max_age,
            "notes": list(self.notes),
            "findings": list(self.findings),
        }


@dataclass(slots=True)
class FindingTally:
    """One finding id in one scope (an API origin, or a URL template), as the analysis
    counts it; the report turns it into the finding a user reads."""

    id: str
    scope: str
    count: int = 0
    flows: list[str] = field(default_factory=list)
    origins: set[str] = field(default_factory=set)
    methods: set[str] = field(default_factory=set)
    headers: set[str] = field(default_factory=set)
    example: str | None = None


def set_blocked(result: FlowResult, failure: object, ex) -> None:
    """``result`` is BLOCKED by ``failure`` (a :class:`~cors_addon.fetch_rules.CorsFailure`,
    in the browser's words), or by a preflight that got no answer at all."""
    result.verdict = "blocked"
    if isinstance(failure, CorsFailure):
        result.cors_error = failure.error
        result.failed_parameter = failure.parameter
        result.message = console_text(failure.error, failure.parameter)
    else:
        result.cors_error = None
        result.message = f"preflight failed: {ex.error or 'no response'}"
