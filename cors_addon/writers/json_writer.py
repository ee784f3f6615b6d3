"""The versioned JSON report (``"schema": "cors-audit/1"``).

One recording gives one report object; several give ``recordings[]`` of them under a
summary of the totals, so a consumer can always read ``summary`` first.
"""

from __future__ import annotations

import json

from cors_addon import SCHEMA
from cors_addon.analyzer import Report

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
    return json.dumps(report_document(reports), indent=2, ensure_ascii=False) + "\n"
