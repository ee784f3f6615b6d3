"""From exchanges to a report: the one path both doors share.

Pages are assigned in start order (a navigation comes before the requests it causes),
then exchanges are analysed in completion order, which is the order the live addon
sees them in: a preflight always completes before its request is sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from cors_addon.analyzer import Analyzer, is_preflight
from cors_addon.pairing import PAIRING_TOLERANCE
from cors_addon.engines import Engine
from cors_addon.exchange import Exchange
from cors_addon.pages import PageTracker
from cors_addon.report import Report
from cors_addon.results import FlowResult

BEGIN, DONE = 1, 0
"""At equal times a completion is handled before a start: the preflight that ended in
the same millisecond as its request started must already be known."""


def event_order(exchanges: Iterable[Exchange]) -> list[tuple[int, Exchange]]:
    """Request starts and completions merged in time order.

    A recording already holds each preflight's whole answer, so a preflight is judged
    at the moment it was sent: recorded durations are not precise enough to order it
    before its request (Chrome's ``blocked`` time over h3 is shorter than the
    preflight, a proxy's timing runs past the moment the browser went on). The cache
    model asks "what was stored at time t" with explicit times, so this order gives the
    same answers as the live addon's (preflight answered, then request sent)."""
    events = []
    for ex in exchanges:
        if is_preflight(ex):
            events.append((ex.wire_start, DONE, 0, ex.source_index, ex))
        else:
            events.append((ex.wire_start + PAIRING_TOLERANCE, BEGIN, 1, ex.source_index, ex))
            events.append((ex.ended + PAIRING_TOLERANCE, DONE, 1, ex.source_index, ex))
    events.sort(key=lambda e: e[:4])
    return [(kind, ex) for _, kind, _, _, ex in events]


def analyze(
    exchanges: list[Exchange],
    engine: Engine,
    *,
    pages: list[dict] | None = None,
    what_if: Iterable[int] = (),
    keep_flows: bool = True,
    on_result: Callable[[FlowResult], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Report:
    tracker = PageTracker(pages)
    for ex in sorted(exchanges, key=lambda e: (e.started, e.source_index)):
        tracker.assign(ex)
    analyzer = Analyzer(engine, keep_flows=keep_flows, pages=tracker, what_if=what_if, on_result=on_result)
    done = 0
    for kind, ex in event_order(exchanges):
        if kind == BEGIN:
            analyzer.begin(ex)
            continue
        analyzer.add(ex)
        done += 1
        if progress and done % 1000 == 0:
            progress(done)
    return analyzer.finish()
