"""The proxy's side of the helper process (:mod:`cors_addon.live_worker`).

Messages are batched (one write per ``BATCH`` messages, or when the door flushes on a
timer or a sync), and replies are read whenever they are there: when a write finds
the pipe full, from the event loop when mitmproxy runs one, and while waiting for a
reply. Both pipes are non-blocking and a blocked write drains replies, so neither side
can stall the other with a full pipe. Anything wrong with the helper (it did not start, it exited,
a pipe broke) raises :class:`HelperGone`; the addon then analyses in its own process.

Nobody waits for the helper to start (a tenth of a second or more, which the first
flow through the proxy would otherwise wait): messages go to it from the first, and
until it says hello every message is also kept in ``unconfirmed``, so that if it never
starts the addon can analyse them itself and nothing is lost.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from collections.abc import Callable

import cors_addon
from cors_addon import live_wire as wire

BATCH = 256
START_TIMEOUT = 20.0


def worker_command() -> list[str]:
    return [sys.executable, "-m", "cors_addon.live_worker"]


class HelperGone(Exception):
    pass


PIPE_SIZE = 1 << 20


def _widen(fd: int) -> None:
    """A pipe of ``PIPE_SIZE`` (Linux: ``F_SETPIPE_SZ``; 64 KiB otherwise), so that a
    batch is written at once instead of waiting for the helper to read the last one."""
    try:
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_SIZE)
    except (ImportError, OSError):
        pass


class HelperProcess:
    def __init__(self, on_messages: Callable[[list[tuple]], None]) -> None:
        self.on_messages = on_messages
        if getattr(sys, "frozen", False):
            raise HelperGone("this mitmproxy is a standalone binary, which cannot run Python modules")
        root = os.path.dirname(os.path.dirname(os.path.abspath(cors_addon.__file__)))
        env = dict(os.environ)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        try:
            self.proc = subprocess.Popen(
                worker_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                env=env, bufsize=0, close_fds=True)
        except OSError as exc:
            raise HelperGone(f"could not start {' '.join(worker_command())} ({exc})") from None
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.in_fd, self.out_fd = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        os.set_blocking(self.in_fd, False)
        os.set_blocking(self.out_fd, False)
        for fd in (self.in_fd, self.out_fd):
            _widen(fd)
        self._buffer = bytearray()
        self._batch: list[bytes] = []
        self.closed = False
        self.pid = self.proc.pid
        self.gone: list[str] = []
        """Flows the proxy dropped since the last batch, told to the helper with the next."""
        self.unconfirmed: list[bytes] | None = []
        """Every message sent before the helper said hello (None once it has)."""
        self._started = time.monotonic()

    def unanswered(self) -> list[bytes]:
        """The messages a helper that never started left unread: all of them."""
        return (self.unconfirmed or []) + self._batch

    def _patience(self, timeout: float) -> float:
        """How long to wait for the helper: no longer than its start may still take."""
        if self.unconfirmed is None:
            return timeout
        return min(timeout, max(0.0, START_TIMEOUT - (time.monotonic() - self._started)) + 0.01)

    def _check_started(self) -> None:
        if self.unconfirmed is not None and time.monotonic() - self._started > START_TIMEOUT:
            raise HelperGone(f"it did not start in {START_TIMEOUT:.0f} s")

    @property
    def pending(self) -> bool:
        return bool(self._batch)

    def send(self, message: tuple) -> None:
        """Queue a message (ValueError, and nothing queued, when marshal cannot write it)."""
        self._batch.append(wire.encode(message))
        if len(self._batch) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if not self._batch:
            return
        if self.gone:
            self._batch.append(wire.encode((wire.GONE, self.gone)))
            self.gone = []
        batch, self._batch = self._batch, []
        if self.unconfirmed is not None:
            self.unconfirmed += batch
        data = wire.frame(batch)
        self.drain()  # the replies so far: one read, and their verdicts reach the flows sooner
        self._check_started()
        view = memoryview(data)
        while view:
            if self.closed:
                raise HelperGone(self._why("it exited"))
            try:
                view = view[os.write(self.in_fd, view):]
                continue
            except BlockingIOError:
                pass
            except OSError as exc:
                raise HelperGone(self._why(f"its input closed ({exc.strerror or exc})")) from None
            # The pipe is full: the helper is busy, perhaps writing replies nobody reads.
            events = dict(self._poll(select.POLLIN | select.POLLOUT, self._patience(60.0)))
            if not events:
                self._check_started()
                raise HelperGone("it stopped reading for a minute")
            if events.get(self.out_fd):
                self.drain()

    def drain(self) -> list[tuple]:
        """Read every reply already there and hand them to ``on_messages``; the replies.
        At the end of the helper's output, ``closed`` is set."""
        while True:
            try:
                chunk = os.read(self.out_fd, 1 << 20)
            except BlockingIOError:
                break
            except OSError as exc:
                raise HelperGone(self._why(f"its output broke ({exc.strerror or exc})")) from None
            if not chunk:
                self.closed = True
                break
            self._buffer += chunk
        got = wire.frames(self._buffer)
        if got and got[0][0] == wire.HELLO:  # the helper's first words
            self.unconfirmed = None
            del got[0]
        if got:
            self.on_messages(got)
        return got

    def wait_for(self, kind: int, timeout: float) -> tuple:
        """Flush, then read replies until one of ``kind`` arrives."""
        self.flush()
        deadline = time.monotonic() + timeout
        while True:
            for message in self.drain():
                if message[0] == kind:
                    return message
            if self.closed:
                raise HelperGone(self._why("it exited"))
            self._check_started()
            left = deadline - time.monotonic()
            if left <= 0:
                raise HelperGone(f"no reply in {timeout:.0f} s")
            self._poll(select.POLLIN, self._patience(left))

    def _poll(self, mask: int, timeout: float) -> list[tuple[int, int]]:
        """``poll`` (not ``select``: a busy proxy's descriptors may pass 1024) on the
        helper's output, and on its input too when ``mask`` has ``POLLOUT``."""
        poller = select.poll()
        poller.register(self.out_fd, select.POLLIN)
        if mask & select.POLLOUT:
            poller.register(self.in_fd, select.POLLOUT)
        return poller.poll(timeout * 1000)

    def close(self) -> None:
        """End the helper: closing its input ends it once it has read everything; one
        that never said hello has nothing to finish and is killed."""
        if self.unconfirmed is not None:
            self.proc.kill()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()  # type: ignore[union-attr]
            except OSError:
                pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def _why(self, what: str) -> str:
        code = self.proc.poll()
        return what + (f" (exit code {code})" if code is not None else "")
