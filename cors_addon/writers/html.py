"""The HTML report: one self-contained file to open from disk or attach to a ticket.

No scripts, no fonts, no images from anywhere: CSS and SVG are inline and a
Content-Security-Policy of ``default-src 'none'`` makes sure nothing is ever fetched.
Jinja2 (a mitmproxy dependency, so the live addon can write it too) escapes every
value by default: URLs, headers and messages come from traffic and may hold markup.
The report and every header value shown are redacted (:mod:`cors_addon.redact`)
unless the user asked for secrets.

The what-if panel re-runs the engine on the same exchanges under each engine profile,
with the pages of the report declared, so every profile counts the same page loads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from cors_addon import __version__
from cors_addon.engines import ENGINES
from cors_addon.exchange import Exchange
from cors_addon.fetch_rules import cors_unsafe_header_names
from cors_addon.pages import PageTally
from cors_addon.redact import SECRET_HEADERS, redact_header, redact_report, redact_url, redact_value
from cors_addon.report import Report
from cors_addon.results import FlowResult
from cors_addon.writers.html_waterfall import Row, layout

WHAT_IF_AGES = (600, 7200, 86400)
ENGINE_ORDER = ("chromium", "firefox", "webkit")
TOP_FINDINGS = 5
MAX_FINDING_LINKS = 20
PREFLIGHT_REQUEST = ("origin", "access-control-request-method", "access-control-request-headers",
                     "cache-control", "pragma")
ACTUAL_REQUEST = ("origin", "sec-fetch-mode", "sec-fetch-site", "cookie", "authorization", "content-type")
RESPONSE = ("access-control-allow-origin", "access-control-allow-credentials", "access-control-allow-methods",
            "access-control-allow-headers", "access-control-max-age", "access-control-expose-headers",
            "location", "vary")


@dataclass(frozen=True, slots=True)
class Shown:
    """How a recorded value may appear: redacted, unless secrets were asked for."""

    secrets: bool = False

    def header(self, name: str, value: str) -> str:
        return value if self.secrets else redact_header(name, value)

    def url(self, url: str) -> str:
        return url if self.secrets else redact_url(url)

    def text(self, text: str) -> str:
        return text if self.secrets else redact_value(text)


@dataclass(slots=True)
class HtmlSource:
    path: str
    report: Report
    exchanges: list[Exchange] | None = None
    """Without them (a report built elsewhere) the page shows no headers and the
    what-if panel only the report's own engine."""


def declared_pages(report: Report) -> list[dict]:
    return [
        {"id": p.id, "title": p.url, "startedDateTime": datetime.fromtimestamp(p.started or 0, timezone.utc).isoformat()}
        for p in report.pages
    ]


def repaged(report: Report, exchanges: list[Exchange]) -> list[Exchange]:
    """Copies of the exchanges carrying the report's page of each one, so every
    engine's what-if counts exactly the report's page loads (a live report may have
    folded old pages together)."""
    page_of = {f.id: f.page for f in report.flows}
    return [replace(ex, pageref=page_of.get(ex.id, ex.pageref)) for ex in exchanges]


def what_if_reports(report: Report, exchanges: list[Exchange] | None) -> dict[str, Report]:
    from cors_addon.audit import analyze

    if exchanges is None:
        return {}
    pages = declared_pages(report)
    return {
        name: analyze(repaged(report, exchanges), ENGINES[name], pages=pages, what_if=WHAT_IF_AGES, keep_flows=False)
        for name in ENGINE_ORDER
    }


def what_if_panel(report: Report, exchanges: list[Exchange] | None) -> dict:
    per_engine = what_if_reports(report, exchanges)
    if not per_engine:
        per_engine = {report.engine.name: report}
    columns = []
    for name, r in per_engine.items():
        for age in WHAT_IF_AGES:
            key = f"max_age_{age}"
            if key in r.what_if_names:
                capped = age > r.engine.cap
                columns.append({"engine": name, "age": age, "key": key, "capped": capped, "cap": r.engine.cap})
    tallies = {name: {p.id: p for p in r.pages} for name, r in per_engine.items()}
    rows = []
    for page in report.pages:
        cells = []
        for col in columns:
            tally = tallies[col["engine"]].get(page.id)
            slot = tally.what_if.get(col["key"], {}) if tally else {}
            cells.append((int(slot.get("preflights_saved", 0)), round(slot.get("time_saved_ms", 0.0), 1)))
        rows.append({"page": page, "cells": cells})
    totals = [(per_engine[c["engine"]].summary["what_if"][c["key"]]["preflights_saved"],
               per_engine[c["engine"]].summary["what_if"][c["key"]]["time_saved_ms"]) for c in columns]
    return {"columns": columns, "rows": rows, "totals": totals, "engines": list(per_engine)}


def deciding_headers(flow: FlowResult, ex: Exchange | None, shown: Shown = Shown()) -> list[tuple[str, str, str]]:
    """The request and response headers the CORS verdict was read from; redacted,
    credentials headers appear as present, never with their value."""
    if ex is None:
        return []
    out: list[tuple[str, str, str]] = []
    wanted = PREFLIGHT_REQUEST
    if flow.kind != "preflight":
        wanted = ACTUAL_REQUEST + tuple(cors_unsafe_header_names(ex.request_headers, chromium_extras=True, wire=True))
    seen: set[str] = set()
    for name in wanted:
        if name.lower() in seen:
            continue
        seen.add(name.lower())
        for value in ex.request_headers.get_all(name):
            out.append((">", _canonical(name), shown.header(name, value)))
    if ex.has_response:
        out.append(("<", "status", str(ex.status)))
        for name in RESPONSE:
            for value in ex.response_headers.get_all(name):
                out.append(("<", _canonical(name), shown.header(name, value)))
        for value in ex.response_headers.get_all("set-cookie"):
            out.append(("<", "Set-Cookie", shown.header("set-cookie", value)))
    elif ex.error:
        out.append(("<", "error", shown.text(ex.error)))
    return out


def _canonical(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-"))


def _title(row: Row, headers: list[tuple[str, str, str]], preflight: FlowResult | None, shown: Shown) -> str:
    f = row.flow
    if f is None:
        reason = (preflight.message or preflight.cors_error) if preflight else None
        return f"{row.label} — never sent\nThe preflight above failed: {reason or 'network error'}"
    lines = [f"{f.method} {shown.url(f.url)}", f"{f.kind}, status {f.status or 'none'}, {f.duration_ms:,.1f} ms"]
    if f.verdict == "blocked":
        lines.append(f"BLOCKED: {f.cors_error or 'network error'}"
                     + (f" ({f.failed_parameter})" if f.failed_parameter else ""))
        if f.message:
            lines.append(f.message)
    if f.redundant:
        lines.append(f"Redundant preflight: {f.cause}")
    lines.extend(f.notes)
    lines.extend(f"{d} {n}: {v}" for d, n, v in headers)
    return "\n".join(lines)


def page_context(prefix: str, page: PageTally, flows: list[FlowResult], exchanges: dict[str, Exchange],
                 shown: Shown) -> dict:
    wf = layout(flows, exchanges, page.started, shown.url)
    by_id = {f.id: f for f in flows}
    rows = []
    for row in wf.rows:
        ex = exchanges.get(row.flow.id) if row.flow is not None else None
        headers = deciding_headers(row.flow, ex, shown) if row.flow is not None else []
        partner = by_id.get(row.pair) if row.pair else None
        rows.append({
            "row": row,
            "anchor": f"{prefix}flow-{row.flow.id}" if row.flow is not None else f"{prefix}never-{row.pair}",
            "headers": headers,
            "title": _title(row, headers, partner, shown),
            "url": shown.url(row.flow.url if row.flow is not None else (partner.url if partner else "")),
            "partner": partner,
        })
    return {"page": page, "anchor": f"{prefix}{page.id}", "wf": wf, "rows": rows}


def recording_context(index: int, source: HtmlSource, many: bool, shown: Shown) -> dict:
    report = source.report if shown.secrets else redact_report(source.report)
    prefix = f"r{index}-" if many else ""
    exchanges = {ex.id: ex for ex in source.exchanges or []}
    flows_of: dict[str, list[FlowResult]] = {}
    for f in report.flows:
        flows_of.setdefault(f.page, []).append(f)
    pages = [page_context(prefix, p, flows_of.get(p.id, []), exchanges, shown) for p in report.pages]
    drawn = {r["row"].flow.id: r["anchor"] for pc in pages for r in pc["rows"] if r["row"].flow is not None}
    ranked = sorted(report.pages, key=lambda p: (-p.avoidable_time_ms, -p.preflight_time_ms, p.id))
    return {
        "index": index,
        "prefix": prefix,
        "path": source.path,
        "report": report,
        "summary": report.summary,
        "pages": pages,
        "ranked": ranked,
        "top_findings": report.findings[:TOP_FINDINGS],
        "findings": report.findings,
        "links": drawn,
        "what_if": what_if_panel(report, source.exchanges),
        "has_headers": source.exchanges is not None,
    }


def _environment(shown: Shown):
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(
        loader=PackageLoader("cors_addon.writers", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["ms"] = lambda v: f"{v:,.1f}"
    env.filters["num"] = lambda v: f"{v:.1f}"
    env.filters["url"] = shown.url
    return env


def render_html(sources: Sequence[HtmlSource], *, show_secrets: bool = False) -> str:
    """Lone surrogates (mitmproxy's surrogateescape for non-UTF-8 header bytes) become
    ``?``: the report is written as UTF-8 and must never fail on a recorded byte."""
    shown = Shown(show_secrets)
    many = len(sources) > 1
    recordings = [recording_context(i, s, many, shown) for i, s in enumerate(sources)]
    template = _environment(shown).get_template("report.html.j2")
    text = template.render(
        recordings=recordings,
        generator=f"cors-addon {__version__}",
        secret_headers=sorted(SECRET_HEADERS),
    )
    return text.encode("utf-8", "replace").decode("utf-8")
