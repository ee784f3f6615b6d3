"""Annotated HAR: the user's recording, untouched, plus ``_cors`` on each entry and
``_corsSummary`` on ``log``.

HAR 1.2 reserves ``_``-prefixed names for tools, and every reader ignores what it does
not know, so the annotated file opens everywhere the original did. Nothing else is
added, removed or reordered: deleting the two keys gives back the input, as JSON.
For ``.mitm`` input and live capture the HAR is built by mitmproxy's own ``savehar``
and the page loads we inferred are restored as ``pages``/``pageref``.
"""

from __future__ import annotations

import codecs
import json
from datetime import datetime, timezone
from typing import Any

from cors_addon import SCHEMA
from cors_addon.report import Report
from cors_addon.results import FlowResult

ENTRY_KEY = "_cors"
SUMMARY_KEY = "_corsSummary"


def cors_object(flow: FlowResult, index_of: dict[str, int]) -> dict:
    data = flow.as_dict()
    data.pop("url", None)
    data.pop("method", None)
    data.pop("status", None)
    data.pop("started", None)
    data["pair_entry"] = index_of.get(flow.pair) if flow.pair else None
    return data


def summary_object(report: Report) -> dict:
    return {
        "schema": SCHEMA,
        "summary": report.summary,
        "pages": [p.as_dict() for p in report.pages],
        "findings": [
            {k: f[k] for k in ("id", "severity", "scope", "count", "message", "flows")} | {"fix": f["fix"]["header"]}
            for f in report.findings
        ],
    }


def annotate_har(har: dict, report: Report) -> dict:
    entries = har["log"]["entries"]
    index_of = {f.id: f.index for f in report.flows}
    for flow in report.flows:
        if 0 <= flow.index < len(entries) and isinstance(entries[flow.index], dict):
            entries[flow.index][ENTRY_KEY] = cors_object(flow, index_of)
    har["log"][SUMMARY_KEY] = summary_object(report)
    return har


def flows_to_har(flows: list[Any], report: Report) -> dict:
    """A HAR of mitmproxy flows (``savehar``'s format) with our pages restored."""
    from mitmproxy.addons.savehar import SaveHar

    har = SaveHar().make_har(flows)
    har["log"]["pages"] = [
        {
            "startedDateTime": datetime.fromtimestamp(p.started or 0, timezone.utc).isoformat(),
            "id": p.id,
            "title": p.url,
            "pageTimings": {"onContentLoad": -1, "onLoad": -1},
        }
        for p in report.pages
    ]
    page_of = {f.index: f.page for f in report.flows}
    for index, entry in enumerate(har["log"]["entries"]):
        if index in page_of:
            entry["pageref"] = page_of[index]
    return annotate_har(har, report)


def _json_bytes(text: str) -> bytes:
    """UTF-8, with the recording's own oddities put back as they were: a byte the
    loader could not decode (kept as U+DC80-U+DCFF) becomes that byte again, and any
    other lone surrogate (a ``\\ud800`` escape in the input) its JSON escape."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "cors-json-surrogates")


def _surrogates(exc: UnicodeError) -> tuple[bytes, int]:
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    out = bytearray()
    for ch in exc.object[exc.start:exc.end]:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(code - 0xDC00)
        else:
            out += f"\\u{code:04x}".encode("ascii")
    return bytes(out), exc.end


codecs.register_error("cors-json-surrogates", _surrogates)


def write_har(path: str, har: dict) -> None:
    data = _json_bytes(json.dumps(har, ensure_ascii=False, indent=2) + "\n")
    with open(path, "wb") as fh:
        fh.write(data)
