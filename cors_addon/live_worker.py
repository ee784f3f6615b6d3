"""The addon's helper process: the CORS analysis, off the proxy's request path.

``python -m cors_addon.live_worker`` is started by the addon (:mod:`cors_addon.addon`)
and reads batches of flow events on stdin (:mod:`cors_addon.live_wire`). Each flow is
rebuilt from its raw fields into what the one flow reader
(:func:`cors_addon.sources.flows.flow_to_exchange`) reads, with mitmproxy's meanings
(its own code computes each ``pretty_url`` prefix), and goes through a
:class:`~cors_addon.live.LiveSession`. ``tests/test_addon.py`` holds the helper to
the same reports, marks and verdicts as the in-process analysis on real recordings.
Annotations go back on stdout after each batch. A flow whose analysis raises is
reported back (with the traceback the first time) and the rest go on. End of input
ends the process, so it never outlives the proxy.

Every few MiB of input the helper saves its whole state to a checkpoint file in the
directory the proxy gave it (:func:`save_checkpoint`) and says so: the proxy keeps
what it sent since the last checkpoint, so that whatever becomes of the helper, the
analysis can go on in the proxy from that state with nothing lost.
"""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import sys
import traceback
from collections import OrderedDict

from cors_addon import live_wire as wire
from cors_addon.headers import Headers
from cors_addon.live import Annotation
from cors_addon.live_wire import CHECKPOINT_BYTES, MAX_LIVE_FLOWS


class _Error:
    __slots__ = ("msg", "timestamp")

    def __init__(self, msg: str, timestamp: float) -> None:
        self.msg, self.timestamp = msg, timestamp


class _Flow:
    """What the flow reader reads of an ``HTTPFlow``."""

    __slots__ = ("id", "request", "response", "error")


class _Fields:
    __slots__ = ("fields",)

    def __init__(self, fields: tuple) -> None:
        self.fields = fields


class _RequestData:
    """What :func:`~cors_addon.sources.flows.request_key` reads of ``Request.data``."""

    __slots__ = ("host", "port", "method", "scheme", "authority", "path", "http_version", "headers",
                 "timestamp_start", "timestamp_end")


class _Request:
    """A request as the flow reader reads it, with mitmproxy's meanings: ``method``
    and ``http_version`` decoded as its properties decode them, ``pretty_url`` from
    :func:`_pretty_url`."""

    __slots__ = ("data", "method", "http_version", "headers", "pretty_url", "timestamp_start", "timestamp_end")


_PREFIXES: dict[tuple, str] = {}
"""``scheme://host[:port]`` of ``pretty_url`` for each combination of what it depends
on; building mitmproxy's ``Request`` for every flow was most of the helper's time."""


def _pretty_url(d: _RequestData, headers: Headers) -> str:
    """``Request.pretty_url`` as mitmproxy computes it: for every request but CONNECT,
    the part before the path depends only on the scheme, host, port, authority, HTTP
    version and Host header, so mitmproxy computes it once per combination. The Host
    values come from ``headers``' index, which the analysis builds anyway."""
    from mitmproxy import http

    def real(path: bytes):
        return http.Request(d.host, d.port, d.method, d.scheme, d.authority, path, d.http_version,
                            d.headers.fields, None, None, d.timestamp_start, d.timestamp_end)

    if d.method.decode("utf-8", "surrogateescape").upper() == "CONNECT":
        return real(d.path).pretty_url
    key = (d.scheme, d.host, d.port, d.authority, d.http_version, tuple(headers.get_all("host")))
    prefix = _PREFIXES.get(key)
    if prefix is None:
        if len(_PREFIXES) >= 4096:
            _PREFIXES.clear()
        prefix = _PREFIXES[key] = real(b"").pretty_url
    path = d.path.decode("utf-8", "surrogateescape")
    return prefix + (path if path != "*" else "")


def _request(fields: tuple) -> _Request:
    d = _RequestData()
    (d.host, d.port, d.method, d.scheme, d.authority, d.path, d.http_version, headers,
     d.timestamp_start, d.timestamp_end) = fields
    d.headers = _Fields(headers)
    r = _Request()
    r.data, r.headers = d, Headers.from_byte_fields(headers)
    r.method = d.method.decode("utf-8", "surrogateescape").upper()
    r.http_version = d.http_version.decode("utf-8", "surrogateescape")
    r.timestamp_start, r.timestamp_end = d.timestamp_start, d.timestamp_end
    r.pretty_url = _pretty_url(d, r.headers)
    return r


class _Response:
    __slots__ = ("status_code", "headers", "timestamp_start", "timestamp_end")


def _response(fields: tuple | None) -> _Response | None:
    if fields is None:
        return None
    r = _Response()
    _version, status, _reason, headers, r.timestamp_start, r.timestamp_end = fields
    if type(status) is not int:
        raise ValueError(f"status code {status!r} is not a number")
    r.status_code, r.headers = status, _Fields(headers)
    return r


def _flow(flow_id: str, request, response: tuple | None = None, error: tuple | None = None) -> _Flow:
    f = _Flow()
    f.id = flow_id
    f.request = request
    f.response = _response(response)
    f.error = _Error(*error) if error is not None else None
    return f


class Worker:
    """The analysis behind the wire: the messages of :mod:`cors_addon.live_wire` in,
    its replies out. The helper process runs one; so does the proxy when it takes the
    analysis back (:mod:`cors_addon.live_backend`), restored from the helper's last
    checkpoint. Everything it holds pickles, callbacks included."""

    def __init__(self) -> None:
        self.session = None
        self.out: list = []
        self.finished: list[str] = []
        """Flows whose analysis is over with nothing to show."""
        self._failed_once = False
        self._gone: set[str] = set()
        """Flows the proxy no longer holds (:class:`~cors_addon.live_wire.Gone`)."""
        self._requests: OrderedDict[str, object] = OrderedDict()
        """Each flow's request as the ``request`` hook saw it, until its completion."""
        self.checkpoint_bytes = CHECKPOINT_BYTES

    def _annotate(self, note: Annotation) -> None:
        if note.metadata is None:
            self.finished.append(note.flow_id)
        else:
            self.out.append(note)

    def replies(self) -> list:
        """What to send back after a batch, and forget it here. The verdicts of flows
        the proxy has dropped stay here, but for their BLOCKED lines: in mitmdump that
        is nearly every flow, whose verdicts the proxy would only unpack and drop."""
        gone = self._gone
        out: list = []
        for item in self.out:
            if type(item) is not Annotation:
                out.append(item)
            elif item.flow_id not in gone:
                out.append(wire.Verdict(item.flow_id, wire.pack(item.metadata), item.marked, item.comment,
                                        item.log_line, item.final))
            elif item.log_line:
                out.append(wire.Verdict(item.flow_id, None, "", "", item.log_line, item.final))
        self.out = []
        if self.finished:
            forget = [flow_id for flow_id in self.finished if flow_id not in gone]
            if forget:
                out.append(wire.Forget(forget))
            self.finished = []
        return out

    def handle(self, message) -> bool:
        """Act on one message; False once the session is finished."""
        kind = type(message)
        if kind is wire.Begin or kind is wire.Complete:
            self._flow_event(message)
        elif kind is wire.Configure:
            from cors_addon.live import LiveSession

            self.session = LiveSession(message.browser, keep_flows=message.keep_flows,
                                       keep_exchanges=message.keep_exchanges, show_secrets=message.show_secrets,
                                       on_annotation=self._annotate)
            self.checkpoint_bytes = message.checkpoint_bytes
        elif kind is wire.Gone:
            if len(self._gone) > MAX_LIVE_FLOWS:
                self._gone.clear()  # a verdict for a flow forgotten here is dropped by the proxy
            self._gone.update(message.flow_ids)
        elif kind is wire.Sync:
            self.out.append(wire.Synced(message.token))
        elif kind is wire.Finish:
            self.out.append(self.finish(message.report_path, message.fmt, message.want_report))
            return False
        return True

    def _flow_event(self, message) -> None:
        request = None
        try:
            if type(message) is wire.Begin:
                request = _request(message.request)
                self._requests[message.flow_id] = request
                if len(self._requests) > 2 * MAX_LIVE_FLOWS:
                    self._requests.popitem(last=False)
                self.session.begin(_flow(message.flow_id, request))
            else:
                known = self._requests.pop(message.flow_id, None)
                request = _request(message.request) if message.request is not None else known
                if request is None:
                    raise ValueError("the proxy sent no request for this flow and none was seen begin")
                self.session.complete(_flow(message.flow_id, request, message.response, message.error))
        except Exception:
            try:
                url = request.pretty_url if request is not None else f"(flow {message.flow_id}, whose request could not be read)"
            except Exception:
                url = f"(flow {message.flow_id}, whose URL could not be read)"
            text = None if self._failed_once else traceback.format_exc()
            self._failed_once = True
            self.out.append(wire.Failure(url, text))

    def finish(self, report_path: str, fmt: str, want_report: bool) -> wire.Finished:
        """The summary, and the whole report when the addon needs it (an annotated
        HAR of the flows it kept)."""
        report, lines = self.finish_report(report_path, fmt)
        blob = pickle.dumps(report, protocol=pickle.HIGHEST_PROTOCOL) if want_report else None
        return wire.Finished(report.summary, lines, blob)

    def finish_report(self, report_path: str, fmt: str, incomplete: str | None = None):
        """Finish the session and write the report the user asked for, here, where the
        exchanges are (saying so when it is ``incomplete``); the report and the lines
        to log."""
        from cors_addon.live import write_report

        report = self.session.finish()
        report.incomplete = incomplete
        lines: list[str] = []
        if report_path:
            lines.append(write_report(report_path, fmt, report, self.session.exchanges,
                                      show_secrets=self.session.show_secrets))
        return report, lines


CHECKPOINT_NAME = "state.pickle"

def save_checkpoint(directory: str, frames: int, worker: Worker) -> int:
    """The worker's state after ``frames`` frames, replacing the last checkpoint at
    once (a helper killed while writing leaves the last one whole); its size."""
    path = os.path.join(directory, CHECKPOINT_NAME)
    data = pickle.dumps((frames, worker), protocol=pickle.HIGHEST_PROTOCOL)
    with open(path + ".new", "wb") as fh:
        fh.write(data)
    os.replace(path + ".new", path)
    return len(data)


def load_checkpoint(directory: str) -> tuple[int, Worker] | None:
    """The last checkpoint: the frames it covers and the worker as it was then."""
    try:
        with open(os.path.join(directory, CHECKPOINT_NAME), "rb") as fh:
            return pickle.load(fh)
    except FileNotFoundError:
        return None


def main(argv: list[str]) -> int:
    """Read frames until the proxy closes the pipe or says :class:`Finish`.

    The helper is in a session of its own and ignores SIGINT: a terminal's Ctrl-C goes
    to the proxy's whole process group, and the proxy, not the helper, decides when
    the analysis ends (it sends what is left and asks for the report)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    directory = argv[1] if len(argv) > 1 else None
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write into the reply stream

    def send(messages: list) -> None:
        stdout.write(wire.frame([wire.encode(m) for m in messages]))
        stdout.flush()

    worker = Worker()
    send([wire.Hello(os.getpid())])
    buffer = bytearray()
    frames = unsaved = 0
    threshold = 0
    running = True
    while running:
        chunk = stdin.read1(1 << 20)
        if not chunk:
            break
        buffer += chunk
        for data in wire.split_frames(buffer):
            for message in wire.frame_messages(data):
                if not worker.handle(message):
                    running = False
                    break
            frames += 1
            unsaved += len(data)
        replies = worker.replies()
        if replies:
            send(replies)
        if running and directory and unsaved >= max(threshold, worker.checkpoint_bytes):
            size = save_checkpoint(directory, frames, worker)
            send([wire.Checkpoint(frames, size)])
            unsaved, threshold = 0, 2 * size
    if directory:  # the proxy has what it asked for, or is gone: nobody will read them
        shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    code = main(sys.argv)
    # Everything is written and the session's state is garbage: skip the interpreter's
    # teardown, which the proxy's exit waited for (60-110 ms after a 1k-10k flow replay).
    sys.stderr.flush()
    os._exit(code)
