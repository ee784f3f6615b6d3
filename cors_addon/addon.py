"""The mitmproxy addon: the engine's live door.

Each blocked flow is logged the moment the analysis knows it (a failing preflight as
soon as its answer arrives, a failing response when it completes) in the browser's
words, and marked and commented for mitmweb. Pairing happens at the ``request`` hook,
when every preflight has completed; judging at ``response``/``error``.

The analysis runs in a helper process (:mod:`cors_addon.live_worker`) unless
``cors_helper`` is off: the proxy only copies each flow's raw fields into a batch (a
few microseconds), so the addon adds almost nothing to the time a flow spends in the
proxy, and verdicts come back within milliseconds. Where the helper cannot run (a
standalone mitmproxy binary) or stops, the same :class:`~cors_addon.live.LiveSession`
runs in this process instead.

Only the standard library and mitmproxy are imported here, so the addon loads into a
mitmproxy that has nothing else installed. An exception inside the analysis of one
flow is logged once with its URL and never reaches the proxy.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mitmproxy import command, ctx, exceptions, flow, http, types
from mitmproxy.hooks import UpdateHook
from mitmproxy.log import ALERT

from cors_addon import live_wire as wire
from cors_addon.engines import ENGINES, get_engine
from cors_addon.live_helper import HelperGone, HelperProcess
from cors_addon.live_wire import MAX_LIVE_FLOWS
from cors_addon.writers import FORMATS, format_for_path

if TYPE_CHECKING:
    # The analysis is imported where it runs (the helper, or this process once the
    # helper is gone): loading it took mitmproxy's start a twentieth of a second.
    from cors_addon.analyzer import Report
    from cors_addon.exchange import Exchange
    from cors_addon.live import Annotation, LiveSession

logger = logging.getLogger(__name__)

FLUSH_DELAY = 0.005
"""Seconds a batch may wait for more flows before it goes to the helper."""
FINISH_TIMEOUT = 600.0


class _FlowRef(weakref.ref):
    """A flow held weakly, with its id, so that its death can take it out of the index."""

    __slots__ = ("flow_id",)


class CorsAddon:
    name = "cors"

    def __init__(self) -> None:
        self.session: LiveSession | None = None
        """The analysis, when it runs in this process."""
        self.helper: HelperProcess | None = None
        self._settings: tuple | None = None
        self._on_death = self._died  # one bound method, not one per flow
        self._live: dict[str, _FlowRef] = {}
        """Flows whose verdict may still arrive or change, by id. Held weakly, and
        each leaves the moment its flow dies (:meth:`_died`): a flow nobody else keeps
        (mitmdump drops each once it is done) needs no mark. Keeping flows alive until
        their verdicts arrived made each outlive two garbage collections; keeping
        their references that long made the full collections three times as
        frequent (measured over 30k replayed flows: 3 against 1)."""
        self._inflight: dict[str, tuple] = {}
        """What was sent to the helper of each request between its two hooks."""
        self._kept: list[http.HTTPFlow] = []
        self._keep = False
        self._failed_once = False
        self._helper_failed = False
        self._current: http.HTTPFlow | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._flush_scheduled = False
        self._finished: tuple | None = None

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
        loader.add_option(
            "cors_helper", bool, True,
            """Run the CORS analysis in a helper process, off the proxy's request path
            (it falls back to mitmproxy's own process when the helper cannot run).""",
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
        self._keep = bool(ctx.options.cors_annotate)
        path = ctx.options.cors_report
        html = bool(path) and format_for_path(path, ctx.options.cors_format) == "html"
        settings = (ctx.options.cors_browser, bool(ctx.options.cors_report or ctx.options.cors_annotate), html,
                    ctx.options.cors_show_secrets, ctx.options.cors_helper)
        if settings != self._settings:
            # A new engine or a new report: a fresh session (a report covers what
            # was seen since its options were set).
            self._settings = settings
            self._stop_helper()
            self.session = None

    @property
    def browser(self) -> str:
        return self._settings[0] if self._settings else "chromium"

    # -- hooks -------------------------------------------------------------------

    # The three hooks are the proxy's request path: with the helper running, each only
    # copies the flow's raw fields into the batch (a few microseconds; measured by
    # scripts/bench), and everything else happens in the helper.

    def request(self, f: http.HTTPFlow) -> None:
        if self.helper is None or not self._to_helper(f, self._begin_event):
            self._in_process(f, True)

    def response(self, f: http.HTTPFlow) -> None:
        self._complete(f)

    def error(self, f: http.HTTPFlow) -> None:
        self._complete(f)

    def _complete(self, f: http.HTTPFlow) -> None:
        if self._keep:
            self._kept.append(f)
        live = self._live
        ref = live[f.id] = _FlowRef(f, self._on_death)
        ref.flow_id = f.id
        if len(live) > MAX_LIVE_FLOWS:
            del live[next(iter(live))]
        if self.helper is None or not self._to_helper(f, self._complete_event):
            self._in_process(f, False)

    def _died(self, ref: _FlowRef) -> None:
        """A flow's last reference went (at once in mitmdump, when the view lets go in
        mitmweb): it leaves the index, and the helper hears of it with its next batch
        and sends back nothing but the BLOCKED lines for it (most of the verdicts the
        proxy unpacked and dropped, before)."""
        flow_id = ref.flow_id
        if self._live.get(flow_id) is ref:
            del self._live[flow_id]
            if self.helper is not None:
                self.helper.gone.append(flow_id)

    def _to_helper(self, f: http.HTTPFlow, event) -> bool:
        """Queue the flow's event for the helper; False when the helper is gone and the
        event was not analysed (the caller then analyses the flow here)."""
        try:
            self.helper.send(event(f))  # type: ignore[union-attr]
            if not self._flush_scheduled:
                self._schedule_flush()
        except HelperGone as exc:
            return self._helper_gone(exc)
        except Exception:
            self._failed(f.request.pretty_url, None)
        return True

    def _begin_event(self, f: http.HTTPFlow) -> tuple:
        fields = wire.request_fields(f)
        inflight = self._inflight
        inflight[f.id] = fields
        if len(inflight) > MAX_LIVE_FLOWS:
            del inflight[next(iter(inflight))]
        return (wire.BEGIN, f.id, fields)

    def _complete_event(self, f: http.HTTPFlow) -> tuple:
        return wire.complete_event(f, self._inflight.pop(f.id, None))

    def _in_process(self, f: http.HTTPFlow, begin: bool) -> None:
        """Never raise into mitmproxy: one failing flow is logged once, the proxy and
        the rest of the analysis go on."""
        self._current = f
        try:
            if self.session is None and self.helper is None:
                self._start()
                if self.helper is not None and self._to_helper(f, self._begin_event if begin else self._complete_event):
                    return  # started: the flow went there
            session = self.session
            assert session is not None
            session.begin(f) if begin else session.complete(f)
        except Exception:
            self._failed(f.request.pretty_url, None)
        finally:
            self._current = None

    def _failed(self, url: str, trace: str | None) -> None:
        if not self._failed_once:
            self._failed_once = True
            if trace:
                logger.error(f"CORS analysis failed for {url}; continuing\n{trace.rstrip()}")
            else:
                logger.exception(f"CORS analysis failed for {url}; continuing")
        else:
            logger.warning(f"CORS analysis failed for {url}")

    # -- where the analysis runs -----------------------------------------------------

    def _start(self, *, helper: bool = True) -> None:
        browser, keep_flows, html, show_secrets, use_helper = self._settings or (
            "chromium", False, False, False, True)
        if helper and use_helper and not self._helper_failed:
            try:
                self.helper = HelperProcess(self._on_helper_messages)
                self.helper.send((wire.CONFIGURE, browser, keep_flows, html, show_secrets))
                loop = self._event_loop()
                if loop is not None:
                    loop.add_reader(self.helper.out_fd, self._drain)
                return
            except HelperGone as exc:
                self._helper_gone(exc)
                return
        from cors_addon.live import LiveSession

        self.session = LiveSession(browser, keep_flows=keep_flows, keep_exchanges=html, show_secrets=show_secrets,
                                   on_annotation=self._apply)

    def _event_loop(self) -> asyncio.AbstractEventLoop | None:
        """mitmproxy's event loop, when the hooks are called from it (not in unit
        tests driving the hooks directly)."""
        if self._loop is None:
            try:
                self._loop = asyncio.get_running_loop()
            except RuntimeError:
                return None
        return self._loop

    def _helper_gone(self, exc: HelperGone) -> bool:
        """Analyse here from now on; say so once. True when the helper never started
        and everything sent to it was analysed here instead (the event just sent too)."""
        helper = self.helper
        self._helper_failed = True
        if helper is not None and helper.unconfirmed is not None:
            logger.info(f"CORS helper process did not start: {exc}; analysing in mitmproxy's process")
            backlog = helper.unanswered()
            self._stop_helper()
            self._analyse_here(backlog)
            return True
        if helper is not None:
            logger.warning(f"CORS helper process stopped: {exc}; analysing in mitmproxy's process from now on "
                           "(flows before this are not in the report)")
        else:
            logger.info(f"CORS helper process unavailable: {exc}; analysing in mitmproxy's process")
        self._stop_helper()
        self._start()
        return False

    def _analyse_here(self, backlog: list[bytes]) -> None:
        """What was sent to a helper that never started, through the helper's own code
        in this process; its session goes on with the flows to come."""
        from cors_addon.live_worker import Worker

        worker = Worker()
        for data in backlog:
            message = wire.decode(data)
            if message[0] in (wire.CONFIGURE, wire.BEGIN, wire.COMPLETE):  # not a sync or finish nobody awaits now
                worker.handle(message)
        if worker.session is None:
            self._start()
        else:
            self.session = worker.session
            self.session.on_annotation = self._apply
        self._on_helper_messages(worker.replies())

    def _stop_helper(self) -> None:
        helper, self.helper = self.helper, None
        self._inflight.clear()
        if helper is None:
            return
        if self._loop is not None:
            try:
                self._loop.remove_reader(helper.out_fd)
            except (ValueError, OSError):
                pass
        helper.close()

    def _schedule_flush(self) -> None:
        """Send the batch soon (within ``FLUSH_DELAY``), or now when there is no event
        loop to do it later."""
        if self._flush_scheduled or self.helper is None or not self.helper.pending:
            return
        loop = self._event_loop()
        if loop is None:
            self.helper.flush()
            return
        self._flush_scheduled = True
        loop.call_later(FLUSH_DELAY, self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        try:
            if self.helper is not None:
                self.helper.flush()
        except HelperGone as exc:
            self._helper_gone(exc)

    def _drain(self) -> None:
        try:
            if self.helper is not None:
                self.helper.drain()
                if self.helper.closed:
                    raise HelperGone("it exited")
        except HelperGone as exc:
            self._helper_gone(exc)

    def sync(self, timeout: float = 60.0) -> None:
        """Wait until every flow seen so far has been analysed and its verdict applied
        (tests, and anyone reading flows right after a replay)."""
        if self.helper is not None:
            try:
                self.helper.send((wire.SYNC, 0))
                self.helper.wait_for(wire.SYNCED, timeout)
            except HelperGone as exc:
                self._helper_gone(exc)

    def _on_helper_messages(self, messages: list[tuple]) -> None:
        """Replies from the helper, in order; the flows they mark are refreshed in
        one ``update`` event."""
        marked: list[http.HTTPFlow] = []
        for message in messages:
            try:
                kind = message[0]
                if kind == wire.ANNOTATION:
                    f = self._put(*message[1:], False)
                    if f is not None:
                        marked.append(f)
                elif kind == wire.FORGET:
                    pop = self._live.pop
                    for flow_id in message[1]:
                        pop(flow_id, None)
                elif kind == wire.FAILURE:
                    self._failed(message[1], message[2])
                elif kind == wire.FINISHED:
                    self._finished = message[1:]
            except Exception:  # never into the helper's I/O, which may be mid-write
                logger.exception("CORS verdict could not be applied")
        if marked:
            ctx.master.addons.trigger(UpdateHook(marked))

    # -- verdicts --------------------------------------------------------------------

    def _apply(self, note: Annotation) -> None:
        self._put(*note.as_tuple())

    def _put(self, flow_id: str, metadata: dict | bytes | None, marked: str, comment: str, log_line: str | None,
             final: bool, update: bool = True) -> http.HTTPFlow | None:
        """Put a verdict (an :class:`Annotation`'s fields) on its flow; the flow when
        it was marked (and, unless ``update`` is off, refreshed in mitmweb)."""
        if log_line:
            logger.log(ALERT, log_line)
        ref = self._live.get(flow_id)
        if ref is None:
            return None
        if final:
            # A finished result never changes again (a request is finished after its
            # preflight), so its flow leaves the index.
            del self._live[flow_id]
        f = ref()
        if f is None or metadata is None:
            return None
        f.metadata["cors"] = wire.decode(metadata) if type(metadata) is bytes else metadata
        if not marked:
            return None
        f.marked, f.comment = marked, comment
        if f is self._current:
            return None
        if update:
            ctx.master.addons.trigger(UpdateHook([f]))
        return f

    # -- the end ---------------------------------------------------------------------

    def done(self) -> None:
        try:
            if self.helper is not None:
                try:
                    self._finish_in_helper()
                    return
                except HelperGone as exc:
                    self._helper_gone(exc)
            if self.session is None:
                self._start(helper=False)  # no flow was seen: nothing for a helper to do
            assert self.session is not None
            report = self.session.finish()
            if ctx.options.cors_report:
                from cors_addon.live import write_report

                logger.log(ALERT, write_report(ctx.options.cors_report, ctx.options.cors_format, report,
                                               self.session.exchanges, show_secrets=ctx.options.cors_show_secrets))
            self._write_annotated(report)
            self._log_summary(report.summary)
        except Exception:
            logger.exception("CORS report could not be written")

    def _finish_in_helper(self) -> None:
        assert self.helper is not None
        self._finished = None
        self.helper.send((wire.FINISH, ctx.options.cors_report, ctx.options.cors_format, self._keep))
        self.helper.wait_for(wire.FINISHED, FINISH_TIMEOUT)
        assert self._finished is not None
        summary, messages, blob = self._finished
        self._stop_helper()
        for line in messages:
            logger.log(ALERT, line)
        if blob is not None:
            self._write_annotated(pickle.loads(blob))
        self._log_summary(summary)

    def _write_annotated(self, report: Report) -> None:
        if ctx.options.cors_annotate:
            from cors_addon.writers.har_annotate import flows_to_har, write_har

            write_har(ctx.options.cors_annotate, flows_to_har(self._kept, report))
            logger.log(ALERT, f"CORS-annotated HAR written to {ctx.options.cors_annotate}")

    @staticmethod
    def _log_summary(s: dict) -> None:
        logger.log(
            ALERT,
            f"CORS: {s['preflights']} preflights ({s['redundant_preflights']} redundant), "
            f"{s['blocked']} blocked, {s['avoidable_time_ms']:.0f} ms avoidable over {s['pages']} pages",
        )

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
        from cors_addon.audit import analyze
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
        from cors_addon.audit import analyze

        return analyze(self._exchanges_for(flows), get_engine(ctx.options.cors_browser))

    @staticmethod
    def _exchanges_for(flows: Sequence[flow.Flow]) -> list[Exchange]:
        from cors_addon.sources.flows import flow_to_exchange, is_http_flow

        http_flows = [f for f in flows if is_http_flow(f)]
        return [flow_to_exchange(f, i) for i, f in enumerate(http_flows)]


SCRIPT_HOOKS = ("load", "configure", "request", "response", "error", "done")
"""Every mitmproxy hook :class:`CorsAddon` has (a test holds the two together)."""
SCRIPT_COMMANDS = tuple(name for name, value in vars(CorsAddon).items()
                        if isinstance(getattr(value, "command_name", None), str))
"""The methods that are mitmproxy commands, found as mitmproxy's command collection
finds them (so a new command cannot be left out of the script)."""


def script_globals() -> dict:
    """What makes a script module the addon itself, for ``globals().update(...)``: a
    fresh :class:`CorsAddon`'s hooks and commands as the module's own names, its name,
    and the addon as ``addon``.

    For every event of every flow (eight for each flow a replay loads), mitmproxy walks
    from its script loader through each script to the script's module and into the
    module's ``addons``. Functions of the module itself end that walk one level
    sooner. Instructions per replayed flow over a bare replay (valgrind, 1,000 − 200
    flows): the addon in an ``addons`` list 205k, the module as the addon 144k; a no-op
    script shaped either way, 131k and 95k.
    """
    addon = CorsAddon()
    names: dict = {"name": addon.name, "addon": addon}
    for attr in SCRIPT_HOOKS + SCRIPT_COMMANDS:
        names[attr] = getattr(addon, attr)
    return names
