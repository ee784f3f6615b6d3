"""Writers turn a :class:`~cors_addon.analyzer.Report` into text for people and tools."""

from __future__ import annotations

from cors_addon.analyzer import Report

FORMATS = ("table", "json", "markdown")
SUFFIX_FORMATS = {".json": "json", ".md": "markdown", ".markdown": "markdown", ".txt": "table"}


def render(reports: list[tuple[str, Report]], fmt: str) -> str:
    if fmt == "json":
        from cors_addon.writers.json_writer import render_json

        return render_json(reports)
    if fmt == "markdown":
        from cors_addon.writers.markdown import render_markdown

        return render_markdown(reports)
    from cors_addon.writers.table import render_table

    return render_table(reports)


def format_for_path(path: str, default: str = "table") -> str:
    for suffix, fmt in SUFFIX_FORMATS.items():
        if path.lower().endswith(suffix):
            return fmt
    return default
