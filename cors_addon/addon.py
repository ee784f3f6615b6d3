"""The mitmproxy addon: the engine's live door.

Each blocked flow is logged the moment the analysis knows it (a failing preflight as
soon as its answer arrives, a failing response when it completes) in the browser's
words, and marked and commented for mitmweb. Pairing happens at the ``request`` hook,
when every preflight has completed; judging at ``response``/``error``.

The hooks hand each flow to a backend (:mod:`cors_addon.live_backend`): a helper
process unless ``cors_helper`` is off, so the proxy only copies each flow's raw fields
(a few microseconds) and verdicts come back within milliseconds; or mitmproxy's own
process, where the helper cannot run or has failed. The failure policy is written
there. The door puts verdicts on flows, logs, and writes what only the proxy can (the
annotated HAR of the flows it kept).

Only the standard library and mitmproxy are imported here, so the addon loads into a
mitmproxy that has nothing else installed.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from mitmproxy import command, ctx, exceptions, flow, http, types
from mitmproxy.hooks import UpdateHook
from mitmproxy.log import ALERT

from cors_addon import live_wire as wire
from cors_addon.live_backend import Backend, HelperBackend, InProcessBackend, new_worker
from cors_addon.live_helper import HelperGone
from cors_addon.live_options import add_options, check_options
from cors_addon.live_wire import MAX_LIVE_FLOWS
from cors_addon.terminal import MAX_URL_CHARS, printable
from cors_addon.writers import format_for_path

if TYPE_CHECKING:
    # The analysis is imported where it runs (the helper, or this process once the
    # helper is gone): loading it took mitmproxy's start a twentieth of a second.
    from cors_addon.report import Report
    from cors_addon.live import Annotation

logger = logging.getLogger(__name__)


def _printable_lines(text: str) -> str:
    """Text for the console, each line escaped (:func:`~cors_addon.terminal.printable`)."""
    return "\n".join(printable(line) for line in text.split("\n"))


class Settings(NamedTuple):
    """The options a session depends on: a change starts a fresh one."""

    browser: str = "chromium"
    keep_flows: bool = False
    keep_exchanges: bool = False
    show_secrets: bool = False
    helper: bool = True


class _FlowRef(weakref.ref):
    """A flow held weakly, with its id, so that its death can take it out of the index."""

    __slots__ = ("flow_id",)


class _NotStarted:
    """The backend until the first flow: the session's options are final by then."""

    events: list[str] = []

    def __init__(self, addon: CorsAddon) -> None:
        self.addon = addon

    def begin(self, f) -> None:
        self.addon.start().begin(f)

    def complete(self, f) -> None:
        self.addon.start().complete(f)

    def gone(self, flow_id: str) -> None:
        pass

    def sync(self) -> None:
        pass

    def finish(self, report_path: str, fmt: str, want_report: bool):
        return InProcessBackend(new_worker(self.addon.settings), self.addon).finish(report_path, fmt, want_report)

    def close(self) -> None:
        pass


class CorsAddon:
    name = "cors"

    def __init__(self) -> None:
        self.settings = Settings()
        self.backend: Backend = _NotStarted(self)
        self.current: http.HTTPFlow | None = None
        """The flow analysed in this process right now (its hook shows the verdict)."""
        self._configured = False
        self._helper_failed = False
        self._on_death = self._died  # one bound method, not one per flow
        self._live: dict[str, _FlowRef] = {}
        """Flows whose verdict may still arrive or change, by id. Held weakly, and
        each leaves the moment its flow dies (:meth:`_died`): a flow nobody else keeps
        (mitmdump drops each once it is done) needs no mark. Keeping flows alive until
        their verdicts arrived made each outlive two garbage collections; keeping
        their references that long made the full collections three times as
        frequent (measured over 30k replayed flows: 3 against 1)."""
        self._kept: list[http.HTTPFlow] = []
        self._keep = False
        self._failed_once = False

    # -- options -----------------------------------------------------------------

    def load(self, loader) -> None:
        add_options(loader)

    def configure(self, updated: set[str]) -> None:
        check_options(ctx.options, updated)
        self._keep = bool(ctx.options.cors_annotate)
        path = ctx.options.cors_report
        html = bool(path) and format_for_path(path, ctx.options.cors_format) == "html"
        settings = Settings(ctx.options.cors_browser, bool(ctx.options.cors_report or ctx.options.cors_annotate),
                            html, ctx.options.cors_show_secrets, ctx.options.cors_helper)
        if settings != self.settings or not self._configured:
            # A new engine or a new report: a fresh session (a report covers what
            # was seen since its options were set).
            if self._configured and not isinstance(self.backend, _NotStarted):
                logger.info("CORS: options changed; the analysis starts afresh (the report covers what follows)")
            self._configured = True
            self.settings = settings
            self.switch(_NotStarted(self))

    @property
    def browser(self) -> str:
        return self.settings.browser

    # -- hooks -------------------------------------------------------------------

    # The three hooks are the proxy's request path: with the helper running, each only
    # copies the flow's raw fields into the batch (a few microseconds; measured by
    # scripts/bench), and everything else happens in the helper.

    def request(self, f: http.HTTPFlow) -> None:
        self.backend.begin(f)

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
        self.backend.complete(f)

    def _died(self, ref: _FlowRef) -> None:
        """A flow's last reference went (at once in mitmdump, when the view lets go in
        mitmweb): it leaves the index, and the backend may forget its verdict but for
        the BLOCKED line."""
        flow_id = ref.flow_id
        if self._live.get(flow_id) is ref:
            del self._live[flow_id]
            self.backend.gone(flow_id)

    # -- backends ------------------------------------------------------------------

    def start(self) -> Backend:
        """The backend for the session the options ask for."""
        settings = self.settings
        if settings.helper and not self._helper_failed:
            try:
                backend: Backend = HelperBackend(settings, self, self._event_loop())
            except HelperGone as exc:
                self._helper_failed = True
                logger.info(f"CORS helper process unavailable: {exc}; analysing in mitmproxy's process")
                backend = InProcessBackend(new_worker(settings), self)
        else:
            backend = InProcessBackend(new_worker(settings), self)
        self.backend = backend
        return backend

    def switch(self, backend: Backend) -> None:
        """The analysis goes on in ``backend`` (a fresh session, or the helper's taken
        back into this process)."""
        old, self.backend = self.backend, backend
        if isinstance(backend, InProcessBackend) and isinstance(old, HelperBackend):
            self._helper_failed = True
        elif old is not backend:
            old.close()

    @staticmethod
    def _event_loop() -> asyncio.AbstractEventLoop | None:
        """mitmproxy's event loop, when the hooks are called from it (not in unit
        tests driving the hooks directly)."""
        try:
            return asyncio.get_running_loop()
        except RuntimeError:
            return None

    def sync(self) -> None:
        """Wait until every flow seen so far has been analysed and its verdict applied
        (tests, and anyone reading flows right after a replay)."""
        self.backend.sync()

    # -- verdicts --------------------------------------------------------------------

    def failed(self, url: str, trace: str | None) -> None:
        """One flow's analysis raised: logged with its URL, the traceback only the first
        time (an exception's message may quote the traffic, so it is escaped too)."""
        url = printable(url, MAX_URL_CHARS)
        if self._failed_once:
            logger.warning(f"CORS analysis failed for {url}")
            return
        self._failed_once = True
        trace = trace or traceback.format_exc()
        logger.error(f"CORS analysis failed for {url}; continuing\n{_printable_lines(trace.rstrip())}")

    def replies(self, messages: list) -> None:
        """Verdicts from the helper, in order; the flows they mark are refreshed in
        one ``update`` event."""
        marked: list[http.HTTPFlow] = []
        for message in messages:
            try:
                kind = type(message)
                if kind is wire.Verdict:
                    f = self._put(*message[:6], update=False)
                    if f is not None:
                        marked.append(f)
                elif kind is wire.Forget:
                    pop = self._live.pop
                    for flow_id in message.flow_ids:
                        pop(flow_id, None)
                elif kind is wire.Failure:
                    self.failed(message.url, message.trace)
            except Exception:  # never into the helper's I/O, which may be mid-read
                logger.exception("CORS verdict could not be applied")
        if marked:
            ctx.master.addons.trigger(UpdateHook(marked))

    def annotation(self, note: Annotation) -> None:
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
        f.metadata["cors"] = wire.unpack(metadata) if type(metadata) is bytes else metadata
        if not marked:
            return None
        f.marked, f.comment = marked, comment
        if f is self.current:
            return None
        if update:
            ctx.master.addons.trigger(UpdateHook([f]))
        return f

    # -- the end ---------------------------------------------------------------------

    def done(self) -> None:
        try:
            outcome = self.backend.finish(ctx.options.cors_report, ctx.options.cors_format, self._keep)
        except Exception:
            logger.exception("CORS report could not be written")
            return
        self.backend.close()
        for line in outcome.log_lines:
            logger.log(ALERT, line)
        try:
            self._write_annotated(outcome.report)
        except Exception:
            logger.exception("CORS-annotated HAR could not be written")
        self._log_summary(outcome.summary, self.backend.events)

    def _write_annotated(self, report: Report | None) -> None:
        if ctx.options.cors_annotate and report is not None:
            from cors_addon.writers.har_annotate import flows_to_har, write_har

            write_har(ctx.options.cors_annotate, flows_to_har(self._kept, report))
            logger.log(ALERT, f"CORS-annotated HAR written to {ctx.options.cors_annotate}")

    @staticmethod
    def _log_summary(s: dict, events: list[str]) -> None:
        line = (f"CORS: {s['preflights']} preflights ({s['redundant_preflights']} redundant), "
                f"{s['blocked']} blocked, {s['avoidable_time_ms']:.0f} ms avoidable over {s['pages']} pages")
        if events:
            line += " (" + "; ".join(events) + ")"
        logger.log(ALERT, line)

    # -- commands ----------------------------------------------------------------

    @command.command("cors.summary")
    def summary(self, flows: Sequence[flow.Flow]) -> str:
        """The CORS audit of the given flows, as the terminal report."""
        from cors_addon.live_commands import summary_text

        return _printable_lines(summary_text(flows, ctx.options))

    @command.command("cors.report")
    def report(self, flows: Sequence[flow.Flow], path: types.Path) -> None:
        """Write the CORS audit of the given flows to a file (.json, .md, .txt or .html)."""
        from cors_addon.live_commands import write_report_file

        try:
            write_report_file(flows, str(path), ctx.options)
        except OSError as exc:
            raise exceptions.CommandError(f"cannot write {path}: {exc.strerror or exc}") from None
        logger.log(ALERT, f"CORS report written to {path}")


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
