"""Writers turn a :class:`~cors_addon.report.Report` into text for people and tools."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the addon imports this module for its option choices, at every mitmproxy start
    from cors_addon.report import Report
    from cors_addon.exchange import Exchange

FORMATS = ("table", "json", "markdown", "html")
SUFFIX_FORMATS = {".json": "json", ".md": "markdown", ".markdown": "markdown", ".txt": "table",
                  ".html": "html", ".htm": "html"}


def render(reports: list[tuple[str, Report]], fmt: str,
           exchanges: Sequence[list[Exchange] | None] | None = None, *, show_secrets: bool = False) -> str:
    """``exchanges`` (one list per report) feed the HTML report's headers and its
    what-if replay under every engine; the text formats do not need them.

    Unless ``show_secrets``, every writer gets reports whose URLs, messages, notes,
    page titles and findings went through :func:`cors_addon.redact.redact_report`."""
    reports = _shown(reports, show_secrets)
    if fmt == "html":
        from cors_addon.writers.html import HtmlSource, render_html

        lists = list(exchanges) if exchanges is not None else [None] * len(reports)
        return render_html([HtmlSource(path, report, ex) for (path, report), ex in zip(reports, lists)],
                           show_secrets=show_secrets)
    if fmt == "json":
        from cors_addon.writers.json_writer import render_json

        return render_json(reports)
    if fmt == "markdown":
        from cors_addon.writers.markdown import render_markdown

        return render_markdown(reports)
    from cors_addon.writers.table import render_table

    return render_table(reports)


def render_bytes(reports: list[tuple[str, Report]], fmt: str,
                 exchanges: Sequence[list[Exchange] | None] | None = None, *, show_secrets: bool = False) -> bytes:
    """:func:`render` as UTF-8 bytes, ready for a file or a UTF-8 stdout; the JSON
    report is made as bytes from the start. Lone surrogates are written as
    ``\\udc80`` text."""
    if fmt == "json":
        from cors_addon.writers.json_writer import render_json_bytes

        return render_json_bytes(_shown(reports, show_secrets))
    return render(reports, fmt, exchanges, show_secrets=show_secrets).encode("utf-8", "backslashreplace")


def _shown(reports: list[tuple[str, Report]], show_secrets: bool) -> list[tuple[str, Report]]:
    if show_secrets:
        return reports
    from cors_addon.redact import redact_report

    return [(path, redact_report(report)) for path, report in reports]


def format_for_path(path: str, default: str = "table") -> str:
    for suffix, fmt in SUFFIX_FORMATS.items():
        if path.lower().endswith(suffix):
            return fmt
    return default
