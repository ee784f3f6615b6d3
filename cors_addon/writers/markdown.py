"""Markdown for a pull-request comment: the numbers a reviewer needs and the fixes.

Everything that came from traffic is escaped: a recorded header must not be able to
add a link, an image or a table row to the comment.
"""

from __future__ import annotations

import re

from cors_addon.report import Report

_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~])")


def md(text: object) -> str:
    """Escape Markdown and inline HTML, and keep a value on one table row."""
    value = str(text).replace("\r", " ").replace("\n", " ")
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SPECIAL.sub(r"\\\1", value)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def code(text: object, *, cell: bool = True) -> str:
    """A code span: nothing inside is Markdown or HTML to a renderer. A backtick would
    end it early, a line break would end the table row, and in a table cell a ``|``
    starts a new cell even inside a code span (GFM), so those are neutralised."""
    value = _CONTROL.sub(" ", str(text)).replace("`", "'")
    if cell:
        value = value.replace("|", "\\|")
    return f"`{value}`" if value.strip() else "` `"


def render_report(path: str, report: Report) -> str:
    s = report.summary
    out = [
        f"### CORS audit: {code(path, cell=False)}",
        "",
        f"Engine **{s['engine']}**: {s['pages']} pages, {s['cross_origin_requests']} cross-origin requests, "
        f"**{s['preflights']} preflights** ({s['redundant_preflights']} redundant), "
        f"**{s['blocked']} blocked**; {s['preflight_time_ms']:,.0f} ms in preflights, "
        f"{s['avoidable_time_ms']:,.0f} ms avoidable.",
        *(["", f"**Incomplete:** {s['incomplete']}"] if s.get("incomplete") else []),
        "",
        "| page | requests | preflights | redundant | blocked | preflight ms | avoidable ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for p in report.pages:
        out.append(
            f"| {code(p.url)} | {p.requests} | {p.preflights} | {p.redundant_preflights} | {p.blocked} "
            f"| {p.preflight_time_ms:,.0f} | {p.avoidable_time_ms:,.0f} |"
        )
    if report.findings:
        out += ["", "| severity | finding | API origin | flows | fix |", "|---|---|---|---:|---|"]
        for f in report.findings:
            out.append(f"| {f['severity']} | {code(f['id'])} | {code(f['scope'])} | {f['count']} | {code(f['fix']['header'])} |")
    for name, v in s["what_if"].items():
        seconds = name.removeprefix("max_age_")
        out.append(f"\nWith `Access-Control-Max-Age: {seconds}`: {v['preflights_saved']} preflights "
                   f"and {v['time_saved_ms']:,.0f} ms saved.")
    return "\n".join(out)


def render_markdown(reports: list[tuple[str, Report]]) -> str:
    return "\n\n".join(render_report(path, report) for path, report in reports) + "\n"
