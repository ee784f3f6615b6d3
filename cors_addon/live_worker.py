"""The addon's helper process: the CORS analysis, off the proxy's request path.

``python -O -m cors_addon.live_worker`` is started by the addon (:mod:`cors_addon.addon`)
and reads batches of flow events on stdin (:mod:`cors_addon.live_wire`). Each flow is
rebuilt as mitmproxy's own ``Request``/``Response`` from its raw fields, so the one
flow reader (:func:`cors_addon.sources.flows.flow_to_exchange`) reads it exactly as it
reads a flow in the proxy, and goes through a :class:`~cors_addon.live.LiveSession`.
Annotations go back on stdout after each batch. A flow whose analysis raises is
reported back (with the traceback the first time) and the rest go on. End of input
ends the process, so it never outlives the proxy.
"""

from __future__ import annotations

import os
import pickle
import sys
import traceback
from collections import OrderedDict

from cors_addon import live_wire as wire
from cors_addon.live import MAX_LIVE_FLOWS


class _Error:
    __slots__ = ("msg", "timestamp")

    def __init__(self, msg: str, timestamp: float) -> None:
        self.msg, self.timestamp = msg, timestamp


class _Flow:
    """What the flow reader reads of an ``HTTPFlow``."""

    __slots__ = ("id", "request", "response", "error")


def _request(fields: tuple):
    from mitmproxy import http

    host, port, method, scheme, authority, path, version, headers, start, end = fields
    return http.Request(host, port, method, scheme, authority, path, version, headers, None, None, start, end)


def _response(fields: tuple | None):
    from mitmproxy import http

    if fields is None:
        return None
    version, status, reason, headers, start, end = fields
    return http.Response(version, status, reason, headers, None, None, start, end)


def _flow(flow_id: str, request, response: tuple | None = None, error: tuple | None = None) -> _Flow:
    f = _Flow()
    f.id = flow_id
    f.request = request
    f.response = _response(response)
    f.error = _Error(*error) if error is not None else None
    return f


class Worker:
    def __init__(self) -> None:
        self.session = None
        self.out: list = []
        self.finished: list[str] = []
        """Flows whose analysis is over with nothing to show."""
        self._failed_once = False
        self._requests: OrderedDict[str, object] = OrderedDict()
        """Each flow's request as the ``request`` hook saw it, until its completion."""

    def _annotate(self, note) -> None:
        if note.metadata is None:
            self.finished.append(note.flow_id)
        else:
            self.out.append((wire.ANNOTATION, *note.as_tuple()))

    def replies(self) -> list:
        """What to send back after a batch, and forget it here."""
        if self.finished:
            self.out.append((wire.FORGET, self.finished))
            self.finished = []
        out, self.out = self.out, []
        return out

    def handle(self, message: tuple) -> bool:
        """Act on one message; False once the session is finished."""
        kind = message[0]
        if kind == wire.BEGIN or kind == wire.COMPLETE:
            self._flow_event(message)
        elif kind == wire.CONFIGURE:
            from cors_addon.live import LiveSession

            browser, keep_flows, keep_exchanges, show_secrets = message[1:]
            self.session = LiveSession(browser, keep_flows=keep_flows, keep_exchanges=keep_exchanges,
                                       show_secrets=show_secrets, on_annotation=self._annotate)
        elif kind == wire.SYNC:
            self.out.append((wire.SYNCED, message[1]))
        elif kind == wire.FINISH:
            self._finish(*message[1:])
            return False
        return True

    def _flow_event(self, message: tuple) -> None:
        request = None
        try:
            if message[0] == wire.BEGIN:
                request = _request(message[2])
                self._requests[message[1]] = request
                if len(self._requests) > 2 * MAX_LIVE_FLOWS:
                    self._requests.popitem(last=False)
                self.session.begin(_flow(message[1], request))
            else:
                known = self._requests.pop(message[1], None)
                request = _request(message[2]) if message[2] is not None else known
                if request is None:
                    raise ValueError("the proxy sent no request for this flow and none was seen begin")
                self.session.complete(_flow(message[1], request, *message[3:]))
        except Exception:
            try:
                url = request.pretty_url if request is not None else f"(flow {message[1]}, whose request could not be read)"
            except Exception:
                url = f"(flow {message[1]}, whose URL could not be read)"
            text = None if self._failed_once else traceback.format_exc()
            self._failed_once = True
            self.out.append((wire.FAILURE, url, text))

    def _finish(self, report_path: str, fmt: str, want_report: bool) -> None:
        """Write the report the user asked for here, where the exchanges are; send back
        the summary, and the whole report when the addon needs it (an annotated HAR
        of the flows it kept)."""
        from cors_addon.live import write_report

        report = self.session.finish()
        messages: list[str] = []
        if report_path:
            messages.append(write_report(report_path, fmt, report, self.session.exchanges,
                                         show_secrets=self.session.show_secrets))
        blob = pickle.dumps(report, protocol=pickle.HIGHEST_PROTOCOL) if want_report else None
        self.out.append((wire.FINISHED, report.summary, messages, blob))


def main() -> int:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write into the reply stream
    worker = Worker()
    stdout.write(wire.frame([(wire.HELLO, os.getpid())]))
    stdout.flush()
    buffer = bytearray()
    running = True
    while running:
        chunk = stdin.read1(1 << 20)
        if not chunk:
            break
        buffer += chunk
        for message in wire.frames(buffer):
            if not worker.handle(message):
                running = False
                break
        replies = worker.replies()
        if replies:
            stdout.write(wire.frame(replies))
            stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
