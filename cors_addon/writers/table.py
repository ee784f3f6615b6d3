"""The terminal report: per page, then blocked flows, then findings, then totals.

``tabulate`` draws the tables when it is installed; the live addon must also load in a
bare mitmproxy, so a plain fallback keeps this writer dependency-free there.
"""

from __future__ import annotations

from cors_addon.report import Report
from cors_addon.terminal import printable

try:
    from tabulate import tabulate
except ImportError:  # pragma: no cover - exercised only in a bare mitmproxy
    tabulate = None


def _table(rows: list[list], headers: list[str]) -> str:
    if tabulate is not None:
        return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)
    cells = [headers] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def ms(value: float) -> str:
    return f"{value:,.0f}"


def render_report(path: str, report: Report) -> str:
    s = report.summary
    cap_key = f"max_age_{report.engine.cap}"
    out = [f"cors-audit: {printable(path)}  (engine: {report.engine.name}, {s['exchanges']} exchanges)", ""]
    page_rows = [
        [printable(p.id, 24), printable(p.url, 50), p.requests, p.cross_origin, p.preflights,
         p.redundant_preflights, p.blocked, ms(p.preflight_time_ms), ms(p.avoidable_time_ms),
         int(p.what_if.get(cap_key, {}).get("preflights_saved", 0))]
        for p in report.pages
    ]
    out.append(_table(page_rows, ["page", "url", "requests", "cross-origin", "preflights", "redundant",
                                  "blocked", "preflight ms", "avoidable ms", f"saved@{report.engine.cap}s"]))
    blocked = [f for f in report.flows if f.verdict == "blocked" and not (f.kind == "preflight" and f.pair)]
    if blocked:
        out += ["", "Blocked:"]
        rows = [[printable(f.method, 16), printable(f.url, 60), f.cors_error or "network error",
                 printable(f.failed_parameter or "", 40), "yes" if f.never_sent else ""] for f in blocked[:50]]
        out.append(_table(rows, ["method", "url", "reason", "parameter", "never sent"]))
        if len(blocked) > 50:
            out.append(f"… and {len(blocked) - 50} more blocked flows (see --format json)")
    if report.findings:
        out += ["", "Findings:"]
        rows = [[f["severity"], f["id"], printable(f["scope"], 40), f["count"], printable(f["fix"]["header"], 60)]
                for f in report.findings]
        out.append(_table(rows, ["severity", "finding", "api origin", "flows", "fix"]))
    what_if = "; ".join(
        f"Max-Age {name.removeprefix('max_age_')}s saves {v['preflights_saved']} preflights ({ms(v['time_saved_ms'])} ms)"
        for name, v in s["what_if"].items()
    )
    out += [
        "",
        f"Totals: {s['pages']} pages, {s['cross_origin_requests']} cross-origin requests, "
        f"{s['preflights']} preflights ({s['redundant_preflights']} redundant), {s['blocked']} blocked; "
        f"{ms(s['preflight_time_ms'])} ms in preflights, {ms(s['avoidable_time_ms'])} ms avoidable.",
    ]
    if what_if:
        out.append(f"What-if: {what_if}.")
    if s.get("incomplete"):
        out.append(f"Incomplete: {s['incomplete']}")
    return "\n".join(out)


def render_table(reports: list[tuple[str, Report]]) -> str:
    return "\n\n".join(render_report(path, report) for path, report in reports) + "\n"
