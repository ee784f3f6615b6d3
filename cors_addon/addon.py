"""The mitmproxy addon: the engine's live door.

Each blocked flow is logged the moment the proxy can know it (a failing preflight as
soon as its answer arrives, a failing response when it completes) in the browser's
words, and marked and commented for mitmweb. Pairing happens in the ``request`` hook,
when every preflight has completed; judging happens in ``response``/``error``.

Only the standard library and mitmproxy are imported here, so the addon loads into a
mitmproxy that has nothing else installed. An exception inside the analysis of one
flow is logged once with its URL and never reaches the proxy.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence

from mitmproxy import command, ctx, exceptions, flow, http, types
from mitmproxy.hooks import UpdateHook
from mitmproxy.log import ALERT

from cors_addon.analyzer import Analyzer, FlowResult, Report
from cors_addon.audit import analyze
from cors_addon.catalogue import FINDINGS
from cors_addon.engines import ENGINES, get_engine
from cors_addon.exchange import Exchange
from cors_addon.pages import PageTracker
from cors_addon.redact import redact_text, redact_url
from cors_addon.sources.flows import PAGE_METADATA_KEY, flow_to_exchange, is_http_flow, request_key
from cors_addon.writers import FORMATS, format_for_path

logger = logging.getLogger(__name__)

MARKS = {"blocked": ":no_entry:", "redundant": ":repeat:", "warning": ":warning:"}
MAX_LIVE_FLOWS = 10_000
"""Flows whose result may still change (a preflight waiting for its request); older
ones are dropped from this index, never from the analysis."""


MAX_LIVE_PAGES = 1000


class CorsAddon:
    name = "cors"

    def __init__(self) -> None:
        self.pages = PageTracker()
        self.analyzer = self._new_analyzer("chromium", keep_flows=False)
        self._live: OrderedDict[str, http.HTTPFlow] = OrderedDict()
        self._begun: OrderedDict[str, tuple[tuple, Exchange]] = OrderedDict()
        """Flows between their request and response hooks, with the exchange made at
        the request (its URL and headers are reused when the request did not change)."""
        self._kept: list[http.HTTPFlow] = []
        self._exchanges: list[Exchange] | None = None
        """Kept only for an HTML report: its headers and per-engine what-if need them."""
        self._logged: set[str] = set()
        self._failed_once = False
        self._current: http.HTTPFlow | None = None
        self._completed = 0

    # -- options -----------------------------------------------------------------

    def load(self, loader) -> None:
        loader.add_option(
            "cors_report", str, "",
            """Write the CORS audit report here when mitmproxy exits (format from the
            suffix: .json, .md, .txt, .html; or cors_format). An HTML report keeps
            every exchange's headers in memory, like hardump.""",
        )
        loader.add_option(
            "cors_format", str, "table",
            "Format of the cors_report file and of cors.summary.",
            choices=list(FORMATS),
        )
        loader.add_option(
            "cors_browser", str, "chromium",
            "Engine profile for Max-Age caps, parsing and preflight-cache rules.",
            choices=sorted(ENGINES),
        )
        loader.add_option(
            "cors_annotate", str, "",
            """Write a HAR of all flows with a _cors object on each entry when mitmproxy
            exits. Like hardump, this keeps flows in memory.""",
        )
        loader.add_option(
            "cors_show_secrets", bool, False,
            """Show cookies, Authorization values and token-like URL parameters in the
            log lines, flow comments and reports (hidden by default).""",
        )

    def _new_analyzer(self, browser: str, *, keep_flows: bool) -> Analyzer:
        # Without a report to write, page tallies beyond MAX_LIVE_PAGES are folded
        # into one (totals stay exact), so a long session's state stays bounded.
        self.pages = PageTracker(max_pages=None if keep_flows else MAX_LIVE_PAGES)
        return Analyzer(
            get_engine(browser), keep_flows=keep_flows, pages=self.pages,
            on_result=self._on_result, on_blocked=self._on_blocked,
        )

    def configure(self, updated: set[str]) -> None:
        if "cors_browser" in updated and ctx.options.cors_browser not in ENGINES:
            raise exceptions.OptionsError(
                f"cors_browser must be one of {', '.join(sorted(ENGINES))}, not {ctx.options.cors_browser!r}")
        if "cors_format" in updated and ctx.options.cors_format not in FORMATS:
            raise exceptions.OptionsError(f"cors_format must be one of {', '.join(FORMATS)}")
        if "cors_annotate" in updated and ctx.options.cors_annotate:
            if not ctx.options.cors_annotate.lower().endswith(".har"):
                raise exceptions.OptionsError("cors_annotate must name a .har file")
        path = ctx.options.cors_report
        html = bool(path) and format_for_path(path, ctx.options.cors_format) == "html"
        if updated & {"cors_browser", "cors_report", "cors_annotate"} or html != (self._exchanges is not None):
            keep = bool(ctx.options.cors_report or ctx.options.cors_annotate)
            self.analyzer = self._new_analyzer(ctx.options.cors_browser, keep_flows=keep)
            self._exchanges = [] if html else None

    # -- hooks -------------------------------------------------------------------

    def request(self, f: http.HTTPFlow) -> None:
        self._guard(f, self._begin)

    def response(self, f: http.HTTPFlow) -> None:
        self._guard(f, self._complete)

    def error(self, f: http.HTTPFlow) -> None:
        self._guard(f, self._complete)

    def done(self) -> None:
        try:
            report = self.analyzer.finish()
            self._write_outputs(report)
            s = report.summary
            logger.log(
                ALERT,
                f"CORS: {s['preflights']} preflights ({s['redundant_preflights']} redundant), "
                f"{s['blocked']} blocked, {s['avoidable_time_ms']:.0f} ms avoidable over {s['pages']} pages",
            )
        except Exception:
            logger.exception("CORS report could not be written")

    def _guard(self, f: http.HTTPFlow, step) -> None:
        """Never raise into mitmproxy: one failing flow is logged once, the proxy and
        the rest of the analysis go on."""
        self._current = f
        try:
            step(f)
        except Exception:
            if not self._failed_once:
                logger.exception(f"CORS analysis failed for {f.request.pretty_url}; continuing")
                self._failed_once = True
            else:
                logger.warning(f"CORS analysis failed for {f.request.pretty_url}")
        finally:
            self._current = None

    def _begin(self, f: http.HTTPFlow) -> None:
        ex = flow_to_exchange(f, request_only=True)
        f.metadata[PAGE_METADATA_KEY] = self.pages.assign(ex)
        self.analyzer.begin(ex)
        self._begun[f.id] = (request_key(f), ex)
        if len(self._begun) > MAX_LIVE_FLOWS:
            self._begun.popitem(last=False)

    def _complete(self, f: http.HTTPFlow) -> None:
        if f.id not in self._begun:
            self._begin(f)
        if ctx.options.cors_annotate:
            self._kept.append(f)
        self._live[f.id] = f
        if len(self._live) > MAX_LIVE_FLOWS:
            self._live.popitem(last=False)
        begun = self._begun.pop(f.id, None)
        like = begun[1] if begun is not None and begun[0] == request_key(f) else None
        ex = flow_to_exchange(f, self._completed, like=like)
        ex.page = f.metadata.get(PAGE_METADATA_KEY)
        self.analyzer.add(ex)
        if self._exchanges is not None:
            self._exchanges.append(ex)
        self._completed += 1

    # -- results -----------------------------------------------------------------

    def _on_blocked(self, result: FlowResult) -> None:
        self._log_blocked(result)
        self._annotate(result)

    def _on_result(self, result: FlowResult) -> None:
        if result.verdict == "blocked":
            self._log_blocked(result)
        self._annotate(result)
        # A finished result never changes again (a request is finished after its
        # preflight), so its flow leaves the index: keeping paired requests filled it
        # with 10,000 flows nobody would annotate, and made every collection walk them.
        self._live.pop(result.id, None)

    @staticmethod
    def _safe_url(url: str) -> str:
        return url if ctx.options.cors_show_secrets else redact_url(url)

    @staticmethod
    def _safe(text: str | None) -> str:
        text = text or ""
        return text if ctx.options.cors_show_secrets else redact_text(text)

    def _log_blocked(self, result: FlowResult) -> None:
        if result.id in self._logged:
            return
        self._logged.add(result.id)
        if len(self._logged) > MAX_LIVE_FLOWS:
            self._logged.clear()
        method = result.requested["method"] if result.requested else result.method
        reason = result.cors_error or "network error"
        line = f"BLOCKED {method} {self._safe_url(result.url)} from {result.origin}: {reason} — {self._safe(result.message)}"
        fix = fix_line(result)
        if fix:
            line += f" Fix: {fix}"
        if result.never_sent:
            line += " (the request was never sent)"
        logger.log(ALERT, line)

    def _annotate(self, result: FlowResult) -> None:
        f = self._live.get(result.id)
        if f is None:
            return
        f.metadata["cors"] = result.as_dict()
        if result.verdict == "blocked":
            f.marked = MARKS["blocked"]
            f.comment = f"CORS blocked: {result.cors_error or 'network error'} — {self._safe(result.message)}"
        elif result.redundant:
            f.marked = MARKS["redundant"]
            f.comment = f"Redundant preflight ({result.cause}): {FINDINGS['redundant-' + result.cause].title}"
        elif any(FINDINGS[fid].severity == "warning" for fid in result.findings):
            f.marked = MARKS["warning"]
            f.comment = "; ".join(FINDINGS[fid].title for fid in result.findings)
        else:
            return
        if f is not self._current:
            ctx.master.addons.trigger(UpdateHook([f]))

    def _write_outputs(self, report: Report) -> None:
        from cors_addon.writers import render

        if ctx.options.cors_report:
            path = ctx.options.cors_report
            fmt = format_for_path(path, ctx.options.cors_format)
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(render([("live capture", report)], fmt, [self._exchanges],
                                show_secrets=ctx.options.cors_show_secrets))
            logger.log(ALERT, f"CORS report written to {path}")
        if ctx.options.cors_annotate:
            from cors_addon.writers.har_annotate import flows_to_har, write_har

            write_har(ctx.options.cors_annotate, flows_to_har(self._kept, report))
            logger.log(ALERT, f"CORS-annotated HAR written to {ctx.options.cors_annotate}")

    # -- commands ----------------------------------------------------------------

    @command.command("cors.summary")
    def summary(self, flows: Sequence[flow.Flow]) -> str:
        """The CORS audit of the given flows, as the terminal report."""
        from cors_addon.writers import render

        return render([("selected flows", self._report_for(flows))], ctx.options.cors_format,
                      show_secrets=ctx.options.cors_show_secrets)

    @command.command("cors.report")
    def report(self, flows: Sequence[flow.Flow], path: types.Path) -> None:
        """Write the CORS audit of the given flows to a file (.json, .md, .txt or .html)."""
        from cors_addon.writers import render

        fmt = format_for_path(str(path), ctx.options.cors_format)
        exchanges = self._exchanges_for(flows)
        report = analyze(exchanges, get_engine(ctx.options.cors_browser))
        try:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(render([("selected flows", report)], fmt, [exchanges],
                                show_secrets=ctx.options.cors_show_secrets))
        except OSError as exc:
            raise exceptions.CommandError(f"cannot write {path}: {exc.strerror or exc}") from None
        logger.log(ALERT, f"CORS report written to {path}")

    def _report_for(self, flows: Sequence[flow.Flow]) -> Report:
        return analyze(self._exchanges_for(flows), get_engine(ctx.options.cors_browser))

    @staticmethod
    def _exchanges_for(flows: Sequence[flow.Flow]) -> list[Exchange]:
        http_flows = [f for f in flows if is_http_flow(f)]
        return [flow_to_exchange(f, i) for i, f in enumerate(http_flows)]


def fix_line(result: FlowResult) -> str | None:
    from cors_addon.catalogue import render_fix

    if not result.cors_error or result.cors_error not in FINDINGS:
        return None
    methods = ", ".join(sorted(set(result.allowed[0]))) if result.allowed else result.method
    headers = ", ".join(sorted(set(result.allowed[1]))) if result.allowed else ""
    return render_fix(result.cors_error, {
        "origin": result.origin or "", "methods": methods, "headers": headers or "Content-Type", "max_age": "7200",
    })["header"]
