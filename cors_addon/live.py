"""A live session: flows in the order the proxy sees them, verdicts as they are known.

Both ways the addon runs use this one class: in mitmproxy's own process, and in the
helper process (:mod:`cors_addon.live_worker`) that keeps the analysis off the
request path. Flows are read duck-typed through :mod:`cors_addon.sources.flows`, so
the helper can feed it flows rebuilt from what the proxy sent it. What the proxy
should show for a flow comes out as an :class:`Annotation`; putting it on the flow,
and logging its line, is the door's job.

Pairing happens in :meth:`begin` (the ``request`` hook, when every preflight has
completed); judging in :meth:`complete` (``response``/``error``). State is bounded:
the analyzer's own limits, page tallies folded past ``MAX_LIVE_PAGES`` when no report
was asked for, and at most ``MAX_LIVE_FLOWS`` flows between their two hooks.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from cors_addon.analyzer import Analyzer
from cors_addon.catalogue import FINDINGS
from cors_addon.engines import get_engine
from cors_addon.exchange import Exchange
from cors_addon.live_wire import MAX_LIVE_FLOWS
from cors_addon.pages import PageTracker
from cors_addon.redact import redact_text, redact_url
from cors_addon.report import Report
from cors_addon.results import FlowResult
from cors_addon.sources.flows import flow_to_exchange, request_key
from cors_addon.terminal import (MAX_HEADER_LIST_CHARS, MAX_MESSAGE_CHARS, MAX_METHOD_CHARS, MAX_ORIGIN_CHARS,
                                 MAX_URL_CHARS, printable)

MARKS = {"blocked": ":no_entry:", "redundant": ":repeat:", "warning": ":warning:"}
MAX_LIVE_PAGES = 1000
NOT_CORS_KINDS = frozenset({"same-origin", "not-cors"})


@dataclass(slots=True)
class Annotation:
    """What a flow should show once its verdict is known (or changes: a preflight is
    settled when its request arrives)."""

    flow_id: str
    metadata: dict | bytes | None
    """``flow.metadata["cors"]``: the full verdict; None when there is nothing to show
    (a same-origin flow), only that the flow's analysis is over. Bytes when it came
    from the helper: the verdict as :func:`cors_addon.live_wire.encode` packed it."""
    marked: str = ""
    comment: str = ""
    log_line: str | None = None
    """A BLOCKED line to log, the first time a flow is found blocked."""
    final: bool = False
    """The result will not change again: the door may forget the flow."""

    def as_tuple(self) -> tuple:
        return (self.flow_id, self.metadata, self.marked, self.comment, self.log_line, self.final)


class LiveSession:
    def __init__(self, browser: str = "chromium", *, keep_flows: bool = False, keep_exchanges: bool = False,
                 show_secrets: bool = False, on_annotation: Callable[[Annotation], None] | None = None) -> None:
        """``keep_flows``: a per-flow report was asked for (pages are then never folded).
        ``keep_exchanges``: an HTML report was asked for; it shows each exchange's
        headers."""
        self.show_secrets = show_secrets
        self.on_annotation = on_annotation
        self.pages = PageTracker(max_pages=None if keep_flows else MAX_LIVE_PAGES)
        self.analyzer = Analyzer(get_engine(browser), keep_flows=keep_flows, pages=self.pages,
                                 on_result=self._on_result, on_blocked=self._on_blocked)
        self.exchanges: list[Exchange] | None = [] if keep_exchanges else None
        self._begun: OrderedDict[str, tuple[tuple, Exchange]] = OrderedDict()
        """Flows between their request and response hooks, with the exchange made at
        the request (its URL and headers are reused when the request did not change)."""
        self._logged: set[str] = set()
        self._completed = 0

    def begin(self, f) -> None:
        ex = flow_to_exchange(f, request_only=True)
        self.pages.assign(ex)
        self.analyzer.begin(ex)
        self._begun[f.id] = (request_key(f), ex)
        if len(self._begun) > MAX_LIVE_FLOWS:
            self._begun.popitem(last=False)

    def complete(self, f) -> None:
        begun = self._begun.pop(f.id, None)
        if begun is None:
            self.begin(f)
            begun = self._begun.pop(f.id)
        key, started = begun
        like = started if key == request_key(f) else None
        ex = flow_to_exchange(f, self._completed, like=like)
        ex.page = started.page
        self.analyzer.add(ex)
        if self.exchanges is not None:
            self.exchanges.append(ex)
        self._completed += 1

    def finish(self) -> Report:
        return self.analyzer.finish()

    # -- annotations ---------------------------------------------------------------

    def _on_blocked(self, result: FlowResult) -> None:
        self._emit(result, final=False)

    def _on_result(self, result: FlowResult) -> None:
        self._emit(result, final=True)

    def _emit(self, result: FlowResult, *, final: bool) -> None:
        """Cross-origin flows and preflights get their verdict; a same-origin or
        no-cors flow only when something was found on it (CORS has nothing to say
        about the others, and they are half of a browser's traffic)."""
        if self.on_annotation is None:
            return
        if result.kind in NOT_CORS_KINDS and result.verdict == "ok" and not result.findings:
            if final:
                self.on_annotation(Annotation(result.id, None, final=True))
            return
        note = Annotation(result.id, result.as_dict(), final=final)
        if result.verdict == "blocked":
            message = printable(self._safe(result.message), MAX_MESSAGE_CHARS)
            note.marked = MARKS["blocked"]
            note.comment = f"CORS blocked: {result.cors_error or 'network error'} — {message}"
            if result.id not in self._logged:
                self._logged.add(result.id)
                if len(self._logged) > MAX_LIVE_FLOWS:
                    self._logged.clear()
                note.log_line = self._blocked_line(result, message)
        elif result.redundant:
            note.marked = MARKS["redundant"]
            note.comment = f"Redundant preflight ({result.cause}): {FINDINGS['redundant-' + result.cause].title}"
        elif any(FINDINGS[fid].severity == "warning" for fid in result.findings):
            note.marked = MARKS["warning"]
            note.comment = "; ".join(FINDINGS[fid].title for fid in result.findings)
        self.on_annotation(note)

    def _safe(self, text: str | None) -> str:
        text = text or ""
        return text if self.show_secrets else redact_text(text)

    def _blocked_line(self, result: FlowResult, message: str) -> str:
        """``message``: the flow's message as its comment shows it (redacted, printable)."""
        method = printable(result.requested["method"] if result.requested else result.method, MAX_METHOD_CHARS)
        reason = result.cors_error or "network error"
        url = printable(result.url if self.show_secrets else redact_url(result.url), MAX_URL_CHARS)
        origin = printable(result.origin, MAX_ORIGIN_CHARS)
        line = f"BLOCKED {method} {url} from {origin}: {reason} — {message}"
        fix = fix_line(result, self.analyzer.engine.cap)
        if fix:
            line += f" Fix: {fix}"
        if result.never_sent:
            line += " (the request was never sent)"
        return line


def fix_line(result: FlowResult, max_age: int) -> str | None:
    """The fix's header line for a BLOCKED line: the values it quotes from traffic
    are made printable, as everything else on that line. ``max_age``: the engine's cap,
    as the report's fixes say it."""
    from cors_addon.catalogue import render_fix

    if not result.cors_error or result.cors_error not in FINDINGS:
        return None
    methods, headers = (set(result.allowed[0]), set(result.allowed[1])) if result.allowed else (set(), set())
    if result.requested:  # a preflight's own result: what it asked for is what to allow
        methods.add(result.requested["method"])
        headers.update(result.requested["headers"])
    return render_fix(result.cors_error, {
        "origin": printable(result.origin or "", MAX_ORIGIN_CHARS),
        "methods": printable(", ".join(sorted(methods)) or result.method, MAX_HEADER_LIST_CHARS),
        "headers": printable(", ".join(sorted(headers)) or "Content-Type", MAX_HEADER_LIST_CHARS),
        "max_age": str(max_age),
    })["header"]


def write_report(path: str, fmt: str, report: Report, exchanges: list[Exchange] | None, *,
                 show_secrets: bool) -> str:
    """Write the ``cors_report`` file; the line to log about it."""
    from cors_addon.writers import format_for_path, render

    with open(path, "w", encoding="utf-8", errors="backslashreplace") as fh:
        fh.write(render([("live capture", report)], format_for_path(path, fmt), [exchanges],
                        show_secrets=show_secrets))
    return f"CORS report written to {path}"
