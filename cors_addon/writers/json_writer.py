"""The versioned JSON report (``"schema": "cors-audit/1"``).

One recording gives one report object; several give ``recordings[]`` of them under a
summary of the totals, so a consumer can always read ``summary`` first.
"""

from __future__ import annotations

import json

from cors_addon import SCHEMA
from cors_addon.report import Report

TOTAL_KEYS = (
    "exchanges", "pages", "cross_origin_requests", "preflights", "redundant_preflights",
    "blocked", "preflight_time_ms", "avoidable_time_ms",
)


def report_document(reports: list[tuple[str, Report]]) -> dict:
    if len(reports) == 1:
        path, report = reports[0]
        return {**report.as_dict(), "recording": path}
    docs = [{**report.as_dict(), "recording": path} for path, report in reports]
    totals = {key: sum(d["summary"][key] for d in docs) for key in TOTAL_KEYS}
    for key in ("preflight_time_ms", "avoidable_time_ms"):
        totals[key] = round(totals[key], 1)
    totals["engine"] = docs[0]["summary"]["engine"] if docs else None
    totals["recordings"] = len(docs)
    return {"schema": SCHEMA, "summary": totals, "recordings": docs}


def render_json(reports: list[tuple[str, Report]]) -> str:
    return render_json_bytes(reports).decode("utf-8")


def render_json_bytes(reports: list[tuple[str, Report]]) -> bytes:
    """The report as UTF-8 bytes, as the CLI writes it: msgspec makes bytes, and a
    report of 100,000 flows is 70 MB, which a round trip through ``str`` (UCS-2 once
    an em dash is in it) would copy twice more. A lone surrogate (only the standard
    library's encoder lets one through) is written as ``\\udc80`` text, as a file
    opened with ``errors="backslashreplace"`` would."""
    return dumps_indented_bytes(report_document(reports)) + b"\n"


def dumps_indented_bytes(doc: dict) -> bytes:
    """``json.dumps(doc, indent=2, ensure_ascii=False)`` as UTF-8, by msgspec when
    installed (about ten times faster on a report of 100,000 flows; the standard
    library's encoder is pure Python as soon as ``indent`` is given). The text is the
    same except for floats the standard library writes with an exponent, which msgspec
    writes in their shortest form (``1e300`` for ``1e+300``: the same JSON number) and
    non-finite floats, which it writes as ``null`` (``Infinity`` is not JSON)."""
    try:
        import msgspec
    except ImportError:  # pragma: no cover - msgspec is a dependency
        msgspec = None
    if msgspec is not None:
        try:
            return msgspec.json.format(msgspec.json.encode(doc), indent=2)
        except (TypeError, ValueError, OverflowError, UnicodeError):  # lone surrogates, huge ints
            pass
    return json.dumps(doc, indent=2, ensure_ascii=False).encode("utf-8", "backslashreplace")
