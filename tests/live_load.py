"""Browser-shaped CORS load through a real ``mitmdump -s cors_addon.py``, for the tests
that prove the addon's failure policy with real processes and real signals
(``tests/test_live_faults.py``).

Three parts, each usable on its own:

- :func:`serve_origin`: a loopback origin server whose answers follow from the path
  alone (``/ok/...`` allows the CORS call, ``/deny/...`` refuses its preflight,
  ``/simple-ok`` and ``/simple-deny``, ``/plain/...``), so what the analysis must
  find is known before a request is sent;
- :class:`LoadClient`: threads, each with its own keep-alive connection to the
  proxy, sending the calls of a page on ``http://app.test`` the way Chromium does
  (a real request only after a preflight that passes), timing every request;
- :class:`MitmdumpRun`: mitmdump in a session of its own, so that a test can signal
  its whole process group as a terminal's Ctrl-C does, with the processes it started
  found through ``/proc`` and the time its exit took.

:func:`expected_summary` turns the calls that were answered into the report's totals.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.proxy import serve
from tests.conftest import ROOT

MITMDUMP = pathlib.Path(sys.executable).with_name("mitmdump")

PAGE_ORIGIN = "http://app.test"
"""The origin of the page making the calls: another host than the API's, never
connected to (``Origin`` is only a header)."""
PREFLIGHT_HEADERS = "content-type,authorization"
"""``Access-Control-Request-Headers`` as Chromium sends it: lowercase, sorted."""
ALLOWED_METHODS = "PUT, DELETE, PATCH"
PREFLIGHT_MAX_AGE = "5"
"""Small, and irrelevant to the totals: every preflighted call has a URL of its own,
so no request can be answered from the preflight cache instead of its preflight."""


# -- the origin server ---------------------------------------------------------------


class OriginHandler(BaseHTTPRequestHandler):
    """Answers from the path alone:

    - ``/ok/...``: the preflight allows ``ALLOWED_METHODS`` and the preflight headers
      for the ``Origin`` it came with; the real request is answered with
      ``Access-Control-Allow-Origin``;
    - ``/deny/...``: the preflight is answered 204 without any ``Access-Control-Allow-*``
      (the browser blocks the call and never sends the real request);
    - ``/simple-ok`` and ``/simple-deny``: a GET with and without
      ``Access-Control-Allow-Origin``;
    - ``/plain/...``: no CORS headers (same-origin and no-cors requests need none).
    """

    protocol_version = "HTTP/1.1"

    def _answer(self, status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)  # the connection is kept alive: leave nothing unread
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if status != 204:
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status != 204:
            self.wfile.write(body)

    def _allow_origin(self) -> dict[str, str]:
        return {"Access-Control-Allow-Origin": self.headers.get("Origin", "*"), "Vary": "Origin"}

    def do_OPTIONS(self) -> None:
        if self.path.startswith("/ok/"):
            self._answer(204, {**self._allow_origin(), "Access-Control-Allow-Methods": ALLOWED_METHODS,
                               "Access-Control-Allow-Headers": "Content-Type, Authorization",
                               "Access-Control-Max-Age": PREFLIGHT_MAX_AGE})
        elif self.path.startswith("/deny/"):
            self._answer(204, {"Allow": "GET, OPTIONS"})
        else:
            self._answer(404, body=b"{}")

    def do_GET(self) -> None:
        if self.path.startswith("/simple-ok"):
            self._answer(200, self._allow_origin(), b'{"ok": true}')
        elif self.path.startswith(("/simple-deny", "/plain/")):
            self._answer(200, body=b'{"ok": true}')
        else:
            self._answer(404, body=b"{}")

    def do_POST(self) -> None:
        if self.path.startswith("/plain/"):
            self._answer(200, body=b'{"saved": true}')
        else:
            self._answer(404, body=b"{}")

    def _write(self) -> None:
        if self.path.startswith("/ok/"):
            self._answer(200, self._allow_origin(), b'{"done": true}')
        else:
            self._answer(404, body=b"{}")

    do_PUT = do_DELETE = do_PATCH = _write

    def log_message(self, *args) -> None:
        pass


class OriginServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    """Not the default 5: the proxy opens a connection per client connection at once,
    and a connection refused by a full backlog is retried by the kernel a second
    later, a slow response that is no fault of the proxy's."""


def serve_origin():
    """The origin server on a free loopback port (a thread per keep-alive
    connection), as a context manager giving its base URL, ``http://127.0.0.1:PORT``."""
    return serve(OriginHandler, OriginServer)


# -- calls: what a page does, and what the analysis must make of it ------------------


@dataclass(frozen=True)
class CallKind:
    """One kind of call a page makes, with what the analysis must count for it."""

    name: str
    requests: int
    """Requests on the wire: 2 for a preflight that passes and its real request."""
    preflights: int
    blocked: int
    """A refused preflight is one blocked flow (the real request is never sent); a
    simple request answered without ``Access-Control-Allow-Origin`` is one too."""
    kinds: tuple[str, ...]
    """The report's kind of each request, in order."""


PREFLIGHTED_OK = CallKind("preflighted-ok", 2, 1, 0, ("preflight", "preflighted"))
PREFLIGHT_DENIED = CallKind("preflight-denied", 1, 1, 1, ("preflight",))
SIMPLE_OK = CallKind("simple-ok", 1, 0, 0, ("simple",))
SIMPLE_DENIED = CallKind("simple-denied", 1, 0, 1, ("simple",))
SAME_ORIGIN = CallKind("same-origin", 1, 0, 0, ("same-origin",))
NO_CORS = CallKind("no-cors", 1, 0, 0, ("not-cors",))

CYCLE: tuple[tuple[CallKind, str], ...] = (
    (PREFLIGHTED_OK, "PUT"),
    (SIMPLE_OK, "GET"),
    (PREFLIGHT_DENIED, "DELETE"),
    (SAME_ORIGIN, "POST"),
    (PREFLIGHTED_OK, "PATCH"),
    (SIMPLE_DENIED, "GET"),
    (NO_CORS, "GET"),
    (PREFLIGHTED_OK, "DELETE"),
)
"""What each client thread sends, over and over (11 requests in 8 calls)."""
REQUESTS_PER_CYCLE = sum(kind.requests for kind, _ in CYCLE)


def calls_for(requests: int, threads: int) -> int:
    """Calls per thread for at least ``requests`` requests in all (whole cycles)."""
    cycles = -(-requests // (REQUESTS_PER_CYCLE * threads))
    return cycles * len(CYCLE)


@dataclass
class Sent:
    """One request and what became of it. Times are ``time.monotonic()``, the clock
    the tests read when they send a signal."""

    call: str
    method: str
    url: str
    started: float
    done: float = 0.0
    status: int | None = None
    error: str | None = None

    @property
    def latency(self) -> float:
        return self.done - self.started


@dataclass
class Totals:
    """The report's ``summary`` figures a test compares."""

    exchanges: int = 0
    preflights: int = 0
    blocked: int = 0
    cross_origin_requests: int = 0
    kinds: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of_report(cls, summary: dict) -> Totals:
        return cls(summary["exchanges"], summary["preflights"], summary["blocked"],
                   summary["cross_origin_requests"], dict(summary["kinds"]))

    def describe(self) -> str:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.kinds.items()))
        return (f"{self.exchanges} exchanges, {self.preflights} preflights, {self.blocked} blocked, "
                f"{self.cross_origin_requests} cross-origin ({kinds})")


def expected_summary(completed_calls: list[CallKind]) -> Totals:
    """What the report must say after these calls were answered (a same-origin or
    no-cors request is not cross-origin; a preflight is)."""
    kinds = Counter(k for call in completed_calls for k in call.kinds)
    return Totals(
        exchanges=sum(call.requests for call in completed_calls),
        preflights=sum(call.preflights for call in completed_calls),
        blocked=sum(call.blocked for call in completed_calls),
        cross_origin_requests=kinds["preflight"] + kinds["preflighted"] + kinds["simple"],
        kinds=dict(kinds),
    )


# -- the load client -----------------------------------------------------------------


class LoadClient:
    """``threads`` threads, each with its own keep-alive connection to the proxy
    (absolute-form URLs: a plain HTTP proxy), each sending ``calls_per_thread`` calls
    of :data:`CYCLE`. With ``pace``, a thread's k-th call starts no sooner than
    ``k * pace`` seconds after the start, so the traffic lasts that long whatever
    the proxy's speed."""

    def __init__(self, proxy_port: int, api: str, *, threads: int = 8, calls_per_thread: int,
                 pace: float = 0.0, timeout: float = 60.0) -> None:
        self.proxy_port, self.api = proxy_port, api
        self.threads, self.calls_per_thread, self.pace, self.timeout = threads, calls_per_thread, pace, timeout
        self.sent: list[Sent] = []
        self.completed_calls: list[CallKind] = []
        """Calls every request of which was answered as the server answers it."""
        self._lock = threading.Lock()
        self._progress = threading.Condition(self._lock)
        self._answered = 0
        self._workers: list[threading.Thread] = []
        self._serial = itertools.count()

    @property
    def planned_requests(self) -> int:
        per_thread = sum(CYCLE[i % len(CYCLE)][0].requests for i in range(self.calls_per_thread))
        return per_thread * self.threads

    def start(self) -> LoadClient:
        self.started = time.monotonic()
        for n in range(self.threads):
            worker = threading.Thread(target=self._run, args=(n,), name=f"load-client-{n}", daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def wait_for_answers(self, count: int, timeout: float = 120.0) -> None:
        """Return once ``count`` requests have been answered (or failed)."""
        with self._progress:
            if not self._progress.wait_for(lambda: self._answered >= count, timeout):
                raise AssertionError(f"only {self._answered} of {count} requests answered in {timeout:.0f} s")

    def join(self, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            worker.join(max(0.0, deadline - time.monotonic()))
            if worker.is_alive():
                raise AssertionError(f"{worker.name} still sending after {timeout:.0f} s")

    # -- what was sent ------------------------------------------------------------

    def failures(self) -> list[Sent]:
        return [s for s in self.sent if s.error is not None]

    def in_flight_during(self, t0: float, t1: float) -> list[Sent]:
        """Requests that were waiting for their response at some moment in [t0, t1]:
        every one that completed in the window, and those a frozen proxy made wait
        through it."""
        return [s for s in self.sent if s.started <= t1 and s.done >= t0]

    def slowest(self, requests: list[Sent]) -> Sent | None:
        return max(requests, key=lambda s: s.latency, default=None)

    # -- the threads ------------------------------------------------------------------

    def _run(self, n: int) -> None:
        conn = self._connect()
        try:
            for i in range(self.calls_per_thread):
                if self.pace:
                    delay = self.started + i * self.pace - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                kind, method = CYCLE[i % len(CYCLE)]
                conn = self._call(conn, n, i, kind, method)
        finally:
            conn.close()

    def _connect(self) -> HTTPConnection:
        return HTTPConnection("127.0.0.1", self.proxy_port, timeout=self.timeout)

    def _call(self, conn: HTTPConnection, n: int, i: int, kind: CallKind, method: str) -> HTTPConnection:
        """One call as Chromium makes it; the connection to go on with."""
        api, serial = self.api, next(self._serial)
        cors = {"Origin": PAGE_ORIGIN, "Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "cross-site",
                "Sec-Fetch-Dest": "empty"}
        if kind is PREFLIGHTED_OK or kind is PREFLIGHT_DENIED:
            # A URL of its own for every call: its preflight pairs with its request only.
            url = f"{api}/{'ok' if kind is PREFLIGHTED_OK else 'deny'}/{n}/{i}?c={serial}"
            preflight = {**cors, "Access-Control-Request-Method": method,
                         "Access-Control-Request-Headers": PREFLIGHT_HEADERS}
            conn, ok = self._send(conn, kind, "OPTIONS", url, preflight, expect=204)
            if ok and kind is PREFLIGHTED_OK:  # none after a refused preflight
                conn, ok = self._real_request(conn, kind, method, url, cors)
        elif kind is SIMPLE_OK or kind is SIMPLE_DENIED:
            path = "simple-ok" if kind is SIMPLE_OK else "simple-deny"
            conn, ok = self._send(conn, kind, "GET", f"{api}/{path}?c={serial}", cors, expect=200)
        elif kind is SAME_ORIGIN:
            headers = {"Origin": api, "Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "same-origin",
                       "Sec-Fetch-Dest": "empty", "Content-Type": "text/plain"}
            conn, ok = self._send(conn, kind, "POST", f"{api}/plain/{n}/{i}", headers, expect=200, body=b"ping")
        else:  # an image: no Origin
            headers = {"Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Dest": "image"}
            conn, ok = self._send(conn, kind, "GET", f"{api}/plain/img/{serial}.png", headers, expect=200)
        if ok:
            with self._lock:
                self.completed_calls.append(kind)
        return conn

    def _real_request(self, conn: HTTPConnection, kind: CallKind, method: str, url: str,
                      cors: dict) -> tuple[HTTPConnection, bool]:
        """The request its preflight allowed: credentials-free, with the two headers
        the preflight asked about."""
        body = b'{"value": 1}' if method != "DELETE" else None
        headers = {**cors, "Authorization": "Bearer live-load", "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        return self._send(conn, kind, method, url, headers, expect=200, body=body)

    def _send(self, conn: HTTPConnection, kind: CallKind, method: str, url: str, headers: dict,
              *, expect: int, body: bytes | None = None) -> tuple[HTTPConnection, bool]:
        """Send one request and read its answer; the connection to go on with (a new
        one after a failure) and whether the answer was the one the server gives."""
        record = Sent(kind.name, method, url, time.monotonic())
        try:
            conn.request(method, url, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            record.status = resp.status
            if resp.status != expect:
                record.error = f"status {resp.status}, not {expect}"
        except Exception as exc:  # OSError, http.client.HTTPException, a timeout
            record.error = f"{type(exc).__name__}: {exc}"
        record.done = time.monotonic()
        with self._progress:
            self.sent.append(record)
            self._answered += 1
            self._progress.notify_all()
        if record.error is not None:
            conn.close()
            return self._connect(), False
        return conn, True


# -- mitmdump --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stat(pid: int) -> tuple[int, int] | None:
    """A process's parent and start time (``/proc/<pid>/stat`` fields 4 and 22);
    None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), int(fields[19])


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return True


@dataclass(frozen=True)
class Process:
    """A process by its id and start time, so that a reused id is never mistaken for it."""

    pid: int
    parent: int
    start_time: int

    def alive(self) -> bool:
        stat = _stat(self.pid)
        return stat is not None and stat[1] == self.start_time and not _is_zombie(self.pid)

    def signal(self, sig: int) -> bool:
        """Send ``sig`` if it is still this process; whether it was sent."""
        if not self.alive():
            return False
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            return False
        return True


def descendants_of(root: int) -> list[Process]:
    """Every living process below ``root``, found through each process's parent in
    ``/proc/<pid>/stat``, parents before their children."""
    children: dict[int, list[Process]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None:
                children.setdefault(stat[0], []).append(Process(int(entry), *stat))
    found, queue = [], [root]
    while queue:
        for proc in children.get(queue.pop(0), []):
            if not _is_zombie(proc.pid):
                found.append(proc)
            queue.append(proc.pid)
    return found


class MitmdumpRun:
    """``mitmdump -s cors_addon.py`` on a free loopback port, writing its report to
    ``<directory>/report.json`` when it exits and its output to
    ``<directory>/mitmdump.log``.

    It runs in a session of its own (``start_new_session``), so that
    ``stop(..., group=True)`` reaches its whole process group as a terminal's Ctrl-C
    does and nothing reaches the test runner. Every process it started that the test
    has seen is remembered, and :meth:`cleanup` ends what is left of them."""

    def __init__(self, directory: pathlib.Path, *extra: str) -> None:
        self.directory = directory
        self.report_path = directory / "report.json"
        self.log_path = directory / "mitmdump.log"
        self.port = free_port()
        self.exit_seconds: float | None = None
        """From the last signal :meth:`stop` sent to mitmdump's exit."""
        self.seen: dict[int, Process] = {}
        command = [str(MITMDUMP), "--listen-host", "127.0.0.1", "--listen-port", str(self.port),
                   "-s", str(ROOT / "cors_addon.py"), "--set", f"cors_report={self.report_path}",
                   "--set", "flow_detail=0", *extra]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         cwd=ROOT, start_new_session=True)

    def wait_ready(self, timeout: float = 30.0) -> MitmdumpRun:
        """Return once the proxy's port accepts connections."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"mitmdump exited with {self.proc.returncode}:\n{self.output()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"mitmdump did not listen in {timeout:.0f} s:\n{self.output()}")

    def descendants(self) -> list[Process]:
        """Every process mitmdump started (and theirs), alive now."""
        found = descendants_of(self.proc.pid)
        self.seen.update((p.pid, p) for p in found)
        return found

    def children(self) -> list[Process]:
        return [p for p in self.descendants() if p.parent == self.proc.pid]

    def stop(self, sig: int = signal.SIGINT, *, group: bool = False, timeout: float = 30.0) -> int | None:
        """Send ``sig`` to mitmdump (``group``: to its whole process group, as a
        terminal's Ctrl-C does) and wait for it to exit; its exit status, None when it
        did not exit within ``timeout`` (it is then killed). :attr:`exit_seconds` says
        how long the exit took."""
        self.descendants()
        sent = time.monotonic()
        if group:
            os.killpg(self.proc.pid, sig)
        else:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.exit_seconds = None
            self.cleanup()
            return None
        self.exit_seconds = time.monotonic() - sent
        return code

    def cleanup(self) -> None:
        """End mitmdump and everything it started that is still there (a stopped
        process is continued so that it can die)."""
        if self.proc.poll() is None:
            self.descendants()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        for proc in self.seen.values():
            if proc.signal(signal.SIGKILL):
                proc.signal(signal.SIGCONT)

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def report(self) -> dict | None:
        """The JSON report, None when none was written."""
        try:
            return json.loads(self.report_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
