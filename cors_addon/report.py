"""The report: everything the writers need, computed once from a finished analysis,
and the one place where a finding's fix text is filled in."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cors_addon import SCHEMA, __version__
from cors_addon.catalogue import FINDINGS, render_fix
from cors_addon.engines import Engine
from cors_addon.fetch_rules import SAFELISTED_METHODS
from cors_addon.results import FindingTally

if TYPE_CHECKING:
    from cors_addon.analyzer import Analyzer


class Report:
    """Everything the writers need, computed once from a finished analysis."""

    def __init__(self, analyzer: Analyzer) -> None:
        self.engine = analyzer.engine
        self.flows = sorted(analyzer.flows, key=lambda r: (r.started, r.index))
        self.pages = list(analyzer.pages.pages.values())
        self.kinds = dict(analyzer.kinds)
        self.exchanges = analyzer.exchanges
        self.findings = [self._finding(f, analyzer.engine) for f in analyzer.findings.values()]
        order = {"error": 0, "warning": 1, "info": 2}
        self.findings.sort(key=lambda f: (order[f["severity"]], -f["count"], f["id"], f["scope"]))
        self.what_if_names = analyzer.what_if_names
        self.incomplete: str | None = None
        """Why the report misses flows it should cover (a live session whose analysis
        could not all be recovered); None when it is whole."""

    @staticmethod
    def _finding(f: FindingTally, engine: Engine) -> dict:
        ftype = FINDINGS[f.id]
        context = {
            "origin": ", ".join(sorted(f.origins)) or "https://app.example",
            "methods": ", ".join(sorted(f.methods - SAFELISTED_METHODS | {"GET", "POST"} if f.methods else {"GET", "POST"})),
            "headers": ", ".join(sorted(f.headers)) or "Content-Type",
            "max_age": str(engine.cap),
        }
        message = f"{ftype.title} — {f.count} flow{'s' if f.count != 1 else ''} to {f.scope}"
        return {
            "id": f.id,
            "severity": ftype.severity,
            "title": ftype.title,
            "scope": f.scope,
            "count": f.count,
            "flows": list(f.flows),
            "message": message,
            "example": f.example,
            "explanation": ftype.explanation,
            "basis": ftype.basis,
            "fix": render_fix(f.id, context),
        }

    @property
    def summary(self) -> dict:
        pages = self.pages
        what_if = {}
        for name in self.what_if_names:
            what_if[name] = {
                "preflights_saved": sum(int(p.what_if.get(name, {}).get("preflights_saved", 0)) for p in pages),
                "time_saved_ms": round(sum(p.what_if.get(name, {}).get("time_saved_ms", 0.0) for p in pages), 1),
            }
        summary = {
            "engine": self.engine.name,
            "exchanges": self.exchanges,
            "pages": sum(p.folded or 1 for p in pages),
            "cross_origin_requests": sum(p.cross_origin for p in pages),
            "preflights": sum(p.preflights for p in pages),
            "redundant_preflights": sum(p.redundant_preflights for p in pages),
            "blocked": sum(p.blocked for p in pages),
            "preflight_time_ms": round(sum(p.preflight_time_ms for p in pages), 1),
            "avoidable_time_ms": round(sum(p.avoidable_time_ms for p in pages), 1),
            "kinds": dict(sorted(self.kinds.items())),
            "findings": {
                sev: sum(f["count"] for f in self.findings if f["severity"] == sev)
                for sev in ("error", "warning", "info")
            },
            "what_if": what_if,
        }
        if self.incomplete:
            summary["incomplete"] = self.incomplete
        return summary

    def as_dict(self, *, include_flows: bool = True) -> dict:
        out = {
            "schema": SCHEMA,
            "generator": f"cors-addon {__version__}",
            "summary": self.summary,
            "pages": [p.as_dict() for p in self.pages],
            "findings": self.findings,
        }
        if include_flows:
            out["flows"] = [f.as_dict() for f in self.flows]
        return out
