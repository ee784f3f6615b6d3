"""The addon's commands: an audit of the flows a user selects (``cors.summary @all``,
``cors.report @marked out.html``), through the same analysis as ``cors-audit``."""

from __future__ import annotations

from collections.abc import Sequence

from cors_addon.audit import analyze
from cors_addon.engines import get_engine
from cors_addon.exchange import Exchange
from cors_addon.sources.flows import flow_to_exchange, is_http_flow
from cors_addon.writers import format_for_path, render


def exchanges_of(flows: Sequence) -> list[Exchange]:
    return [flow_to_exchange(f, i) for i, f in enumerate(f for f in flows if is_http_flow(f))]


def summary_text(flows: Sequence, options) -> str:
    report = analyze(exchanges_of(flows), get_engine(options.cors_browser))
    return render([("selected flows", report)], options.cors_format, show_secrets=options.cors_show_secrets)


def write_report_file(flows: Sequence, path: str, options) -> None:
    """Raises OSError when the file cannot be written."""
    exchanges = exchanges_of(flows)
    report = analyze(exchanges, get_engine(options.cors_browser))
    text = render([("selected flows", report)], format_for_path(path, options.cors_format), [exchanges],
                  show_secrets=options.cors_show_secrets)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
