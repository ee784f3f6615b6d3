"""Where the live analysis runs, behind the one interface the addon's hooks use.

The addon hands each flow to a backend (``begin`` at its request, ``complete`` at its
response or error) and applies what comes back through a :class:`Sink`; it never
sees a pipe. :class:`InProcessBackend` analyses in mitmproxy's own process;
:class:`HelperBackend` sends the flows to a helper process
(:mod:`cors_addon.live_worker`), which keeps the analysis off the proxy's request
path, and takes the analysis back into this process when the helper fails.

The failure policy, in one place (the README says it to users):

- **Ctrl-C, SIGTERM.** The helper is in a session of its own and ignores SIGINT, so a
  terminal's Ctrl-C reaches mitmproxy only; mitmproxy's exit (the ``done`` hook) asks
  the helper for the report, after everything it was sent.
- **The helper dies** (killed, crashed, a broken pipe): the analysis goes on here from
  the helper's last checkpoint, with every frame sent since then analysed again, flows
  in flight included. Nothing is lost and no BLOCKED line is logged twice; one line
  says what happened, and the exit line repeats it.
- **The helper stalls** (stopped, frozen): the request path never waits for it. What
  the pipe does not take waits in memory; once the helper has neither read nor run
  for ``STALL_SECONDS`` while data waits, or falls ``JOURNAL_LIMIT`` behind, it is
  ended and its analysis taken back as above.
- **The exit** waits for the report while the helper makes progress (at most
  ``FINISH_SECONDS``), then takes the analysis back and writes the report here. A
  report that could not be completed (the helper gone, its checkpoint unreadable)
  says so, on the exit line and in the report itself.
- **One flow's analysis raises**: it is logged once with its URL (the traceback the
  first time); the proxy and the rest of the analysis go on.
"""

from __future__ import annotations

import logging
import pickle
import time
from collections import deque
from typing import TYPE_CHECKING, Protocol

from cors_addon import live_wire as wire
from cors_addon.live_helper import HelperGone, HelperProcess
from cors_addon.live_wire import MAX_LIVE_FLOWS
from cors_addon.terminal import MAX_MESSAGE_CHARS, printable

if TYPE_CHECKING:
    from cors_addon.report import Report
    from cors_addon.live import Annotation
    from cors_addon.live_worker import Worker

logger = logging.getLogger(__name__)

FLUSH_DELAY = 0.005
"""Seconds a batch may wait for more flows before it goes to the helper."""
FINISH_SECONDS = 60.0
"""The longest mitmproxy's exit waits for a helper that is still working on the report."""
SYNC_SECONDS = 60.0
CATCH_UP_SLICE = 0.01
"""Seconds of the event loop's time that catching up with a helper's backlog takes at
once: the proxy goes on serving in between."""
_NOT_REPLAYED = (wire.Sync, wire.Finish)
"""Questions to the helper nobody waits for an answer to once it is gone."""


class Settings(Protocol):
    browser: str
    keep_flows: bool
    keep_exchanges: bool
    show_secrets: bool


class Sink(Protocol):
    """What the addon does with what a backend finds."""

    current: object
    """The flow being analysed in this process right now, if any."""

    def annotation(self, note: Annotation) -> None: ...
    def replies(self, messages: list) -> None: ...
    def failed(self, url: str, trace: str | None) -> None: ...
    def switch(self, backend: Backend) -> None: ...


class Outcome:
    """The end of a session: its summary, the lines to log, the report when asked for."""

    def __init__(self, summary: dict, log_lines: list[str], report: Report | None) -> None:
        self.summary, self.log_lines, self.report = summary, log_lines, report


class Backend(Protocol):
    events: list[str]
    """What happened to the analysis on the way (for the exit line)."""

    def begin(self, f) -> None: ...
    def complete(self, f) -> None: ...
    def gone(self, flow_id: str) -> None: ...
    def sync(self) -> None: ...
    def finish(self, report_path: str, fmt: str, want_report: bool) -> Outcome: ...
    def close(self) -> None: ...


def new_worker(settings: Settings) -> Worker:
    from cors_addon.live_worker import Worker

    worker = Worker()
    worker.handle(configure_message(settings))
    return worker


def configure_message(settings: Settings) -> wire.Configure:
    return wire.Configure(settings.browser, settings.keep_flows, settings.keep_exchanges, settings.show_secrets,
                          wire.CHECKPOINT_BYTES)


class InProcessBackend:
    """The analysis in mitmproxy's process: a :class:`~cors_addon.live_worker.Worker`'s
    session fed the real flows.

    Taken back from a helper, it first has to catch up with what the helper had not
    analysed (``unseen``: journal frames and messages). That is done a slice at a time
    from the event loop, never all at once on the request path; flows arriving
    meanwhile queue behind it, in order."""

    def __init__(self, worker: Worker, sink: Sink, events: list[str] | None = None, *,
                 unseen: list | None = None, quiet: set[str] | None = None, loop=None) -> None:
        """``quiet``: flows whose BLOCKED line was already logged (by the helper)."""
        self.worker = worker
        self.sink = sink
        self.events = events if events is not None else []
        self.loop = loop
        self.incomplete: str | None = None
        """Why the report will miss flows, if it will."""
        self._quiet = quiet or set()
        self._backlog: deque = deque(unseen or ())
        if self._backlog:  # the worker's session keeps its verdicts until then
            self._catch_up(CATCH_UP_SLICE if loop is not None else None)
        else:
            worker.session.on_annotation = sink.annotation

    @property
    def session(self):
        return self.worker.session

    def begin(self, f) -> None:
        if self._backlog:
            self._backlog.append(wire.Begin(f.id, wire.request_fields(f)))
        else:
            self._run(self.session.begin, f)

    def complete(self, f) -> None:
        if self._backlog:
            self._backlog.append(wire.complete_event(f))
        else:
            self._run(self.session.complete, f)

    def _run(self, step, f) -> None:
        sink = self.sink
        sink.current = f
        try:
            step(f)
        except Exception:
            sink.failed(f.request.pretty_url, None)
        finally:
            sink.current = None

    def _catch_up(self, budget: float | None) -> None:
        """Analyse the backlog for ``budget`` seconds (all of it with None), hand on the
        replies, and come back from the event loop for the rest."""
        backlog, worker = self._backlog, self.worker
        deadline = time.monotonic() + budget if budget is not None else None
        while backlog and (deadline is None or time.monotonic() < deadline):
            item = backlog.popleft()
            for message in wire.frame_messages(item) if type(item) is bytes else (item,):
                if type(message) not in _NOT_REPLAYED:
                    worker.handle(message)
        quiet = self._quiet
        replies = [m._replace(log_line=None) if type(m) is wire.Verdict and m.flow_id in quiet else m
                   for m in worker.replies()]
        if not backlog:
            worker.session.on_annotation = self.sink.annotation
            self._quiet = set()
        self.sink.replies(replies)
        if backlog:
            self.loop.call_soon(self._catch_up, CATCH_UP_SLICE)

    def gone(self, flow_id: str) -> None:
        pass

    def sync(self) -> None:
        if self._backlog:
            self._catch_up(None)

    def finish(self, report_path: str, fmt: str, want_report: bool) -> Outcome:
        self.sync()
        report, lines = self.worker.finish_report(report_path, fmt, self.incomplete)
        return Outcome(report.summary, lines, report)

    def close(self) -> None:
        self._backlog.clear()


class HelperBackend:
    """The analysis in a helper process; this process only packs each flow's raw
    fields (a few microseconds) and applies the verdicts that come back."""

    def __init__(self, settings: Settings, sink: Sink, loop) -> None:
        self.settings, self.sink, self.loop = settings, sink, loop
        self.events: list[str] = []
        self._inflight: dict[str, tuple] = {}
        """What the ``Begin`` of each request carried, until its completion."""
        self._logged: set[str] = set()
        """Flows whose BLOCKED line came since the helper's last checkpoint: taken back,
        the analysis finds them again and must not log them twice."""
        self._flush_scheduled = False
        self._closed = False
        """The session is over: a flush still scheduled has nothing to do."""
        self._flows = 0
        self.helper = HelperProcess(self._replies, self._take_back, loop)
        self.helper.send(configure_message(settings))

    # -- the request path ----------------------------------------------------------

    def begin(self, f) -> None:
        fields = wire.request_fields(f)
        inflight = self._inflight
        inflight[f.id] = fields
        if len(inflight) > MAX_LIVE_FLOWS:
            del inflight[next(iter(inflight))]
        self._send(f, wire.Begin(f.id, fields))

    def complete(self, f) -> None:
        self._flows += 1
        self._send(f, wire.complete_event(f, self._inflight.pop(f.id, None)))

    def _send(self, f, message) -> None:
        try:
            self.helper.send(message)
            if not self._flush_scheduled:
                self._schedule_flush()
        except HelperGone as exc:
            self._take_back(exc)  # the message was sent: taking back analyses it
        except Exception:
            self.sink.failed(f.request.pretty_url, None)

    def gone(self, flow_id: str) -> None:
        self.helper.gone.append(flow_id)

    def _schedule_flush(self) -> None:
        """Send the batch soon (within ``FLUSH_DELAY``), or now when there is no event
        loop to do it later."""
        if self.loop is None:
            self.helper.flush()
            return
        self._flush_scheduled = True
        self.loop.call_later(FLUSH_DELAY, self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._closed or self.sink.backend is not self:
            return
        try:
            self.helper.flush()
        except HelperGone as exc:
            self._take_back(exc)

    # -- replies ---------------------------------------------------------------------

    def _replies(self, messages: list) -> None:
        logged = self._logged
        for message in messages:
            kind = type(message)
            if kind is wire.Verdict:
                if message.log_line:
                    logged.add(message.flow_id)
            elif kind is wire.Checkpoint:
                logged.clear()
        self.sink.replies(messages)

    # -- the end, or the helper's -------------------------------------------------------

    def sync(self) -> None:
        """Wait until everything sent so far is analysed and applied."""
        try:
            self.helper.send(wire.Sync(0))
            self.helper.wait_for(wire.Synced, SYNC_SECONDS)
        except HelperGone as exc:
            self._take_back(exc)

    def finish(self, report_path: str, fmt: str, want_report: bool) -> Outcome:
        try:
            self.helper.send(wire.Finish(report_path, fmt, want_report))
            done = self.helper.wait_for(wire.Finished, FINISH_SECONDS)
        except HelperGone as exc:
            return self._take_back(exc).finish(report_path, fmt, want_report)
        self.close()
        return Outcome(done.summary, done.log_lines, pickle.loads(done.report) if done.report else None)

    def close(self) -> None:
        self._closed = True
        self.helper.close()

    def _take_back(self, exc: HelperGone) -> InProcessBackend:
        """Go on in this process from the helper's last checkpoint and everything sent
        since; when even that fails, from now on, and the exit line says the report
        is incomplete."""
        helper = self.helper
        started = helper.started
        try:
            worker, unseen = helper.recover()
            lost = ""
        except Exception as failure:  # a checkpoint that cannot be read: the flows before it are lost
            worker, unseen = new_worker(self.settings), []
            lost = (f"; its analysis could not be recovered ({printable(str(failure), MAX_MESSAGE_CHARS)}): "
                    f"the report misses the {self._flows:,} flows before this")
        why = printable(str(exc), MAX_MESSAGE_CHARS)  # its last words may quote the traffic
        if not started:
            what = f"CORS helper process did not start ({why}); analysing in mitmproxy's process"
        else:
            what = (f"CORS helper process stopped after {self._flows:,} flows: {why}; "
                    f"the analysis goes on in mitmproxy's process")
        what += lost or (", nothing lost" if started else "")
        logger.log(logging.WARNING if started or lost else logging.INFO, what)
        self.events.append(what.removeprefix("CORS "))
        backend = InProcessBackend(worker, self.sink, self.events, unseen=unseen, quiet=self._logged,
                                   loop=self.loop)
        if lost:
            backend.incomplete = lost.removeprefix("; ")
        self.sink.switch(backend)
        return backend
