"""Geometry of a page's waterfall: one row per cross-origin request, on a time axis.

DevTools lists a preflight far from the request it authorised (users keep asking for it
to be grouped); here each preflight is drawn as its own bar directly above its request,
and a request the browser never sent still gets a row, marked, after the preflight that
stopped it. Only numbers and plain strings are produced: the template draws and escapes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from cors_addon.exchange import Exchange
from cors_addon.redact import redact_url
from cors_addon.results import FlowResult

CROSS_ORIGIN_KINDS = ("preflight", "preflighted", "simple")
MAX_ROWS = 300
WIDTH = 1100
CHART_X = 310
CHART_W = 440
NOTE_X = CHART_X + CHART_W + 10
ROW_H = 20
AXIS_H = 26
GHOST_W = 10


@dataclass(slots=True)
class Row:
    flow: FlowResult | None
    """None for the request a failed preflight stopped, when the recording has no entry
    for it (proxies never see it)."""
    label: str
    classes: str
    note: str
    start: float
    end: float
    group: int
    pair: str | None = None
    x: float = 0.0
    w: float = 0.0
    y: float = 0.0

    @property
    def role(self) -> str:
        if self.flow is None:
            return "never-sent"
        return "preflight" if self.flow.kind == "preflight" else "request"


@dataclass(slots=True)
class Waterfall:
    rows: list[Row]
    groups: list[tuple[float, float, int]]
    ticks: list[tuple[float, str]]
    height: float
    omitted: int = 0
    width: int = WIDTH
    chart_x: int = CHART_X
    chart_w: int = CHART_W
    note_x: int = NOTE_X
    row_h: int = ROW_H
    axis_h: int = AXIS_H


def short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def path_of(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    return parts.path + (f"?{parts.query}" if parts.query else "") or "/"


def times(flow: FlowResult, ex: Exchange | None) -> tuple[float, float]:
    """When the request really left and when it ended. Chrome's HAR starts a
    preflighted request together with its preflight and hides the preflight in
    ``blocked``; ``wire_start`` is after it, which is what the waterfall must show."""
    if ex is not None:
        return ex.wire_start, max(ex.ended, ex.wire_start)
    return flow.started, flow.started + flow.duration_ms / 1000


def _classes(flow: FlowResult) -> str:
    out = ["pf" if flow.kind == "preflight" else "req"]
    if flow.verdict == "blocked":
        out.append("blocked")
    elif flow.verdict == "unknown":
        out.append("unknown")
    if flow.never_sent and flow.kind != "preflight":
        out.append("never-sent")
    if flow.redundant:
        out.append("redundant")
    return " ".join(out)


def _note(flow: FlowResult) -> str:
    if flow.verdict == "blocked":
        note = f"BLOCKED {flow.cors_error or 'network error'}"
        return note + " · never sent" if flow.never_sent and flow.kind != "preflight" else note
    if flow.redundant:
        return f"REDUNDANT: {flow.cause}"
    if flow.verdict == "unknown":
        return short(flow.message or "unknown", 40)
    if flow.cache_hit:
        return f"{flow.status} · preflight from cache"
    return f"{flow.status} · {flow.duration_ms:,.1f} ms"


def _label(flow: FlowResult, url: Callable[[str], str]) -> str:
    if flow.kind == "preflight":
        asked = (flow.requested or {}).get("method") or "?"
        return short(f"preflight for {asked} {path_of(url(flow.url))}", 48)
    return short(f"{flow.method} {path_of(url(flow.url))}", 48)


def build_groups(flows: list[FlowResult], exchanges: dict[str, Exchange],
                 url: Callable[[str], str] = redact_url) -> list[list[Row]]:
    """Preflight + the request it authorised as one group, in the order they started.
    ``url`` is how a recorded URL may be shown (redacted unless secrets were asked for)."""

    def _row(flow: FlowResult, ex: Exchange | None) -> Row:
        start, end = times(flow, ex)
        return Row(flow, _label(flow, url), _classes(flow), _note(flow), start, end, 0, flow.pair)

    def _ghost(preflight: FlowResult, end: float) -> Row:
        asked = (preflight.requested or {}).get("method") or "?"
        label = short(f"{asked} {path_of(url(preflight.url))}", 48)
        return Row(None, label, "req never-sent blocked", "NEVER SENT", end, end, 0, preflight.id)

    mine = {f.id: f for f in flows if f.kind in CROSS_ORIGIN_KINDS}
    groups: list[list[Row]] = []
    for f in mine.values():
        partner = mine.get(f.pair) if f.pair else None
        if f.kind == "preflight" and partner is not None and partner.kind != "preflight":
            continue
        if f.kind != "preflight" and partner is not None and partner.kind == "preflight":
            groups.append([_row(partner, exchanges.get(partner.id)), _row(f, exchanges.get(f.id))])
        elif f.kind == "preflight" and f.never_sent:
            first = _row(f, exchanges.get(f.id))
            groups.append([first, _ghost(f, first.end)])
        else:
            groups.append([_row(f, exchanges.get(f.id))])
    groups.sort(key=lambda g: (g[0].start, g[-1].start))
    for n, g in enumerate(groups):
        for row in g:
            row.group = n
    return groups


def nice_step(span_ms: float, target: int = 6) -> float:
    raw = max(span_ms / target, 0.001)
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)


def tick_label(ms: float) -> str:
    if ms >= 1000:
        return f"{ms / 1000:g} s"
    return f"{ms:g} ms"


def layout(flows: list[FlowResult], exchanges: dict[str, Exchange], page_started: float = 0.0,
           url: Callable[[str], str] = redact_url) -> Waterfall:
    rows: list[Row] = []
    omitted = 0
    for group in build_groups(flows, exchanges, url):
        if omitted or len(rows) + len(group) > MAX_ROWS:
            omitted += len(group)
        else:
            rows.extend(group)
    if not rows:
        return Waterfall([], [], [], 0.0)
    first = min(r.start for r in rows)
    t0 = page_started if 0 < page_started <= first and first - page_started < 3600 else first
    span = max(max(r.end for r in rows) - t0, 0.001)
    scale = CHART_W / span
    spans: dict[int, list[float]] = {}
    for i, r in enumerate(rows):
        r.y = AXIS_H + i * ROW_H
        r.x = CHART_X + (r.start - t0) * scale
        r.w = GHOST_W if r.flow is None else max((r.end - r.start) * scale, 2.0)
        r.x = min(r.x, CHART_X + CHART_W - r.w)
        lo_hi = spans.setdefault(r.group, [r.y, r.y])
        lo_hi[1] = r.y
    step = nice_step(span * 1000)
    ticks = [(CHART_X + (k * step / 1000) * scale, tick_label(round(k * step, 6)))
             for k in range(int(span * 1000 // step) + 1)]
    group_boxes = [(lo, hi + ROW_H, g) for g, (lo, hi) in spans.items() if hi > lo]
    return Waterfall(rows, group_boxes, ticks, AXIS_H + len(rows) * ROW_H + 6, omitted)
