"""``cors-audit diff BEFORE AFTER``: did the fix work?

Two recordings of the same app, before and after a server change (typically adding
``Access-Control-Max-Age``), are audited under one engine profile and compared page by
page: preflights, redundant preflights, blocked requests and preflight time. Pages are
matched by URL, the n-th load of a URL in BEFORE with the n-th in AFTER, since a
recording has no other stable name for a page load. The Max-Age values each API
origin answered with are listed for both sides, and the BEFORE recording's what-if
replay at the Max-Age AFTER used says what the change was predicted to save. Like every
report, the diff shows recorded values redacted (:mod:`cors_addon.redact`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from itertools import zip_longest

from cors_addon.audit import analyze
from cors_addon.engines import ENGINES, Engine, get_engine
from cors_addon.errors import EXIT_INPUT, EXIT_OK, EXIT_OUTPUT, RecordingError
from cors_addon.fetch_rules import origin_of
from cors_addon.pages import PageTally
from cors_addon.redact import redact_report
from cors_addon.report import Report
from cors_addon.sources.load import Recording, load_recording

SCHEMA = "cors-audit-diff/1"
FORMATS = ("table", "json", "markdown")
PAGE_METRICS = ("preflights", "redundant_preflights", "blocked", "preflight_time_ms", "avoidable_time_ms")
SUMMARY_METRICS = ("pages", "cross_origin_requests") + PAGE_METRICS
LABELS = {
    "pages": "pages", "cross_origin_requests": "cross-origin requests", "preflights": "preflights",
    "redundant_preflights": "redundant", "blocked": "blocked", "preflight_time_ms": "preflight ms",
    "avoidable_time_ms": "avoidable ms",
}


def _change(before: float | None, after: float | None, key: str) -> dict:
    value = None if before is None or after is None else after - before
    if value is not None and key.endswith("_ms"):
        value = round(value, 1)
    return {"before": before, "after": after, "change": value}


def _page_numbers(p: PageTally | None) -> dict | None:
    if p is None:
        return None
    d = p.as_dict()
    return {"id": d["id"], **{k: d[k] for k in PAGE_METRICS}}


def match_pages(before: list[PageTally], after: list[PageTally]) -> list[tuple[str, int, PageTally | None, PageTally | None]]:
    """(url, n, before page, after page): the n-th load of each URL on both sides, in
    BEFORE's order, then pages only AFTER has."""
    def by_url(pages: list[PageTally]) -> dict[str, list[PageTally]]:
        out: dict[str, list[PageTally]] = {}
        for p in pages:
            out.setdefault(p.url, []).append(p)
        return out

    b, a = by_url(before), by_url(after)
    urls = list(b) + [u for u in a if u not in b]
    return [(url, n, pb, pa) for url in urls for n, (pb, pa) in enumerate(zip_longest(b.get(url, []), a.get(url, [])))]


def max_age_seen(report: Report) -> dict[str, list[str]]:
    """The Access-Control-Max-Age values each API origin answered preflights with."""
    seen: dict[str, set[str]] = {}
    for f in report.flows:
        if f.kind == "preflight" and f.max_age is not None:
            seen.setdefault(origin_of(f.url), set()).add(f.max_age["raw"] if f.max_age["raw"] is not None else "(none)")
    return {origin: sorted(values) for origin, values in sorted(seen.items())}


def predicted_max_age(after: Report) -> int | None:
    """The Max-Age AFTER's preflights mostly carried, if a valid one."""
    ages = Counter(int(f.max_age["seconds"]) for f in after.flows
                   if f.kind == "preflight" and f.max_age and f.max_age["reason"] in ("valid", "capped"))
    return ages.most_common(1)[0][0] if ages else None


def diff_reports(before: Report, after: Report, *, before_path: str = "BEFORE", after_path: str = "AFTER") -> dict:
    """The prediction is read from BEFORE's what-if at :func:`predicted_max_age`, when
    BEFORE was analysed with it (:func:`audit_pair`)."""
    sb, sa = before.summary, after.summary
    pages = []
    for url, n, pb, pa in match_pages(before.pages, after.pages):
        nb, na = _page_numbers(pb), _page_numbers(pa)
        pages.append({
            "url": url, "occurrence": n, "before": nb, "after": na,
            "change": {k: _change(nb and nb[k], na and na[k], k)["change"] for k in PAGE_METRICS},
        })
    fb = Counter({(f["id"], f["scope"]): f["count"] for f in before.findings})
    fa = Counter({(f["id"], f["scope"]): f["count"] for f in after.findings})
    severity = {(f["id"], f["scope"]): f["severity"] for f in before.findings + after.findings}
    findings = [
        {"id": fid, "scope": scope, "severity": severity[(fid, scope)], "before": fb[(fid, scope)],
         "after": fa[(fid, scope)], "change": fa[(fid, scope)] - fb[(fid, scope)]}
        for fid, scope in sorted(fb.keys() | fa.keys(), key=lambda k: (k[0], k[1]))
        if fb[(fid, scope)] != fa[(fid, scope)]
    ]
    doc = {
        "schema": SCHEMA,
        "engine": before.engine.name,
        "before": before_path,
        "after": after_path,
        "summary": {k: _change(sb[k], sa[k], k) for k in SUMMARY_METRICS},
        "pages": pages,
        "findings": findings,
        "max_age": {"before": max_age_seen(before), "after": max_age_seen(after)},
        "predicted": None,
    }
    age = predicted_max_age(after)
    changed = doc["max_age"]["before"] != doc["max_age"]["after"]
    slot = before.summary["what_if"].get(f"max_age_{age}") if age is not None and changed else None
    if slot:
        doc["predicted"] = {"max_age": age, **slot}
    return doc


def audit_pair(before: Recording, after: Recording, engine: Engine) -> tuple[Report, Report]:
    """AFTER first: the Max-Age it answered with is the what-if BEFORE is replayed at."""
    after_report = analyze(after.exchanges, engine, pages=after.pages)
    age = predicted_max_age(after_report)
    before_report = analyze(before.exchanges, engine, pages=before.pages, what_if=[age] if age is not None else [])
    return before_report, after_report


def _arrow(d: dict, key: str) -> str:
    def fmt(v):
        if v is None:
            return "—"
        return f"{v:,.1f}" if key.endswith("_ms") else str(v)

    if d["before"] is None or d["after"] is None:
        return f"{fmt(d['before'])} → {fmt(d['after'])}"
    change = d["change"]
    if not change:
        return f"{fmt(d['before'])} → {fmt(d['after'])}"
    sign = "+" if change > 0 else ""
    return f"{fmt(d['before'])} → {fmt(d['after'])} ({sign}{fmt(change)})"


def _page_cell(page: dict, key: str) -> str:
    b, a = page["before"], page["after"]
    return _arrow({"before": b and b[key], "after": a and a[key], "change": page["change"][key]}, key)


def tail(text: str, width: int) -> str:
    """Page URLs of one app share their start; the end tells them apart."""
    return text if len(text) <= width else "…" + text[-(width - 1):]


def headline(doc: dict, quote=str) -> list[str]:
    """Totals, the Max-Age each side answered with and the prediction; ``quote`` wraps
    what came from traffic (origins, header values)."""
    s = doc["summary"]
    out = ["; ".join(f"{LABELS[k]} {_arrow(s[k], k)}" for k in PAGE_METRICS)]
    for side in ("before", "after"):
        ages = doc["max_age"][side]
        if ages:
            out.append(f"Access-Control-Max-Age {side}: "
                       + "; ".join(f"{quote(o)} {', '.join(quote(a) for a in v)}" for o, v in ages.items()))
    p = doc["predicted"]
    if p:
        saved = -(s["preflights"]["change"] or 0)
        out.append(f"BEFORE's what-if at Max-Age {p['max_age']} predicted {p['preflights_saved']} preflights "
                   f"({p['time_saved_ms']:,.1f} ms) saved; {saved} fewer were sent.")
    return out


def render_table(doc: dict) -> str:
    from cors_addon.terminal import MAX_HEADER_LIST_CHARS, printable
    from cors_addon.writers.table import _table

    out = [f"cors-audit diff: {doc['before']} → {doc['after']}  (engine: {doc['engine']})", ""]
    rows = [[printable(tail(p["url"], 50)) + (f" #{p['occurrence'] + 1}" if p["occurrence"] else "")]
            + [_page_cell(p, k) for k in PAGE_METRICS] for p in doc["pages"]]
    out.append(_table(rows, ["page"] + [LABELS[k] for k in PAGE_METRICS]))
    if doc["findings"]:
        out += ["", "Findings that changed:"]
        out.append(_table([[f["severity"], f["id"], printable(f["scope"], 40), _arrow(f, "count")] for f in doc["findings"]],
                          ["severity", "finding", "api origin", "flows"]))
    out += [""] + headline(doc, lambda value: printable(value, MAX_HEADER_LIST_CHARS))
    return "\n".join(out) + "\n"


def render_markdown(doc: dict) -> str:
    from cors_addon.writers.markdown import code

    out = [f"### CORS audit diff: {code(doc['before'])} → {code(doc['after'])}", "",
           f"Engine **{doc['engine']}**. " + headline(doc)[0], "",
           "| page | " + " | ".join(LABELS[k] for k in PAGE_METRICS) + " |",
           "|---|" + "---:|" * len(PAGE_METRICS)]
    for p in doc["pages"]:
        label = code(p["url"]) + (f" \\#{p['occurrence'] + 1}" if p["occurrence"] else "")
        out.append(f"| {label} | " + " | ".join(_page_cell(p, k) for k in PAGE_METRICS) + " |")
    if doc["findings"]:
        out += ["", "| severity | finding | API origin | flows |", "|---|---|---|---:|"]
        out += [f"| {f['severity']} | {code(f['id'])} | {code(f['scope'])} | {_arrow(f, 'count')} |"
                for f in doc["findings"]]
    out += [""] + [line + "  " for line in headline(doc, code)[1:]]
    return "\n".join(out).rstrip() + "\n"


def render_diff(doc: dict, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    if fmt == "markdown":
        return render_markdown(doc)
    return render_table(doc)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cors-audit diff",
        description="Compare two recordings of the same app (before and after a change): preflights, "
        "redundant preflights, blocked requests and preflight time per page, pages matched by URL.",
    )
    parser.add_argument("before", metavar="BEFORE", help="recording before the change")
    parser.add_argument("after", metavar="AFTER", help="recording after the change")
    parser.add_argument("--format", choices=FORMATS, default=None,
                        help="report format (default: from --output's suffix, else table)")
    parser.add_argument("-o", "--output", metavar="PATH", help="write the diff here instead of stdout")
    parser.add_argument("--browser", choices=sorted(ENGINES), default="chromium",
                        help="engine profile for both recordings (default: chromium)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no warnings about skipped entries")
    parser.add_argument("--show-secrets", action="store_true",
                        help="show tokens and secret query values in page URLs and header values (redacted by default)")
    return parser


def main(argv: Sequence[str]) -> int:
    from cors_addon.writers import format_for_path

    args = build_parser().parse_args(argv)
    fmt = args.format or (format_for_path(args.output) if args.output else "table")
    if fmt not in FORMATS:
        fmt = "table"
    engine = get_engine(args.browser)
    recordings = []
    for path in (args.before, args.after):
        try:
            recording = load_recording(path)
        except RecordingError as exc:
            print(f"cors-audit: {exc}", file=sys.stderr)
            return EXIT_INPUT
        if not args.quiet:
            for warning in recording.warnings:
                print(f"cors-audit: {path}: {warning}", file=sys.stderr)
        recordings.append(recording)
    before, after = audit_pair(recordings[0], recordings[1], engine)
    if not args.show_secrets:
        before, after = redact_report(before), redact_report(after)
    doc = diff_reports(before, after, before_path=args.before, after_path=args.after)
    text = render_diff(doc, fmt)
    try:
        if args.output:
            with open(args.output, "w", encoding="utf-8") as fh:
                fh.write(text)
        else:
            sys.stdout.write(text)
    except OSError as exc:
        print(f"cors-audit: {exc.filename or 'output'}: cannot write: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_OUTPUT
    return EXIT_OK
