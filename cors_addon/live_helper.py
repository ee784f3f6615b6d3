"""The proxy's side of the helper process (:mod:`cors_addon.live_worker`): the pipes.

Messages are batched (one frame per ``BATCH`` messages, or when the backend flushes
on a timer), and both pipes are non-blocking. What the pipe does not take at once
waits in ``_out``, and mitmproxy's event loop writes it when the helper reads again:
the request path never waits for the helper. Replies are read whenever they are
there.

Every frame sent stays in the journal until the helper says it has saved a
checkpoint covering it (:class:`~cors_addon.live_wire.Checkpoint`). Whatever then
happens to the helper, :meth:`HelperProcess.recover` rebuilds its analysis in this
process from that checkpoint and the journal: nothing it was sent is lost.

Anything wrong with the helper raises :class:`HelperGone`: it did not start, it
exited or was killed, a pipe broke, or it stalled (the journal passed its bound, or
the helper neither read nor ran for ``STALL_SECONDS`` while data waited for it).
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable

import cors_addon
from cors_addon import live_wire as wire

BATCH = 256
START_TIMEOUT = 20.0
STALL_SECONDS = 3.0
"""How long the helper may neither read what waits for it nor use any CPU time before
it counts as stalled (a stopped or frozen process)."""
JOURNAL_LIMIT = 64 << 20
"""Bytes sent since the helper's last checkpoint past which it counts as stalled
(or four times its last checkpoint, if larger): the proxy's memory for a helper that
does not keep up is bounded."""
PIPE_SIZE = 1 << 20


def worker_command() -> list[str]:
    """``-P``: the helper imports the package the addon was loaded from (first on its
    ``PYTHONPATH``), not a ``cors_addon`` in mitmproxy's working directory."""
    return [sys.executable, "-P", "-m", "cors_addon.live_worker"]


class HelperGone(Exception):
    pass


def _widen(fd: int) -> None:
    """A pipe of ``PIPE_SIZE`` (Linux: ``F_SETPIPE_SZ``; 64 KiB otherwise), so that a
    batch is written at once instead of waiting for the helper to read the last one."""
    try:
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_SIZE)
    except (ImportError, OSError):
        pass


def _cpu_ticks(pid: int) -> int | None:
    """The process's user and system CPU time so far (Linux), in clock ticks."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


STDERR_NAME = "stderr.txt"


def _spawn(directory: str) -> subprocess.Popen:
    """The helper, with the addon's package first on its path, its standard error in
    ``directory`` (a traceback of its own stays off mitmproxy's console), and in a
    session of its own: a terminal's Ctrl-C reaches the proxy, which then asks the
    helper for the report, and not the helper itself."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(cors_addon.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    try:
        with open(os.path.join(directory, STDERR_NAME), "wb") as stderr:
            return subprocess.Popen(
                [*worker_command(), directory], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=stderr, env=env, bufsize=0, close_fds=True, start_new_session=True)
    except OSError as exc:
        shutil.rmtree(directory, ignore_errors=True)
        raise HelperGone(f"could not start {' '.join(worker_command())} ({exc})") from None


def last_words(directory: str) -> str:
    """The last line the helper wrote to its standard error (why it died)."""
    try:
        with open(os.path.join(directory, STDERR_NAME), "rb") as fh:
            fh.seek(max(0, os.fstat(fh.fileno()).st_size - 4096))
            lines = fh.read().decode("utf-8", "replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1] if lines else ""


class Liveness:
    """Whether the helper is still getting anywhere: it read or wrote, or at least ran
    (its CPU time grew, where /proc tells). A stopped or frozen process does none of
    these; a busy one (a large checkpoint, a long report) still runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.started = False
        """It said hello."""
        self._started_at = self._progress_at = time.monotonic()
        self._ticks = _cpu_ticks(pid)

    def progress(self) -> None:
        self._progress_at = time.monotonic()

    def check(self) -> None:
        """HelperGone when it never said hello in ``START_TIMEOUT``, or has made no
        progress for ``STALL_SECONDS``."""
        now = time.monotonic()
        if not self.started and now - self._started_at > START_TIMEOUT:
            raise HelperGone(f"it did not start in {START_TIMEOUT:.0f} s")
        if now - self._progress_at < STALL_SECONDS:
            return
        ticks = _cpu_ticks(self.pid)
        if ticks is not None and ticks != self._ticks:
            self._ticks, self._progress_at = ticks, now
            return
        if self.started or ticks is not None:
            raise HelperGone(f"it stalled (no progress in {now - self._progress_at:.0f} s)")


class Journal:
    """Every frame sent since the helper's last checkpoint, in order: what the proxy
    must still be able to analyse itself if the helper goes."""

    def __init__(self) -> None:
        self.frames: deque[bytes] = deque()
        self.start = 0
        """The number of the first frame held."""
        self.size = 0
        """Bytes held."""
        self.limit = JOURNAL_LIMIT

    def append(self, frame: bytes) -> None:
        self.frames.append(frame)
        self.size += len(frame)

    def checkpoint(self, frames: int, checkpoint_size: int) -> None:
        """The helper saved its state after ``frames`` frames: forget those."""
        held = self.frames
        while self.start < frames and held:
            self.size -= len(held.popleft())
            self.start += 1
        self.limit = max(JOURNAL_LIMIT, 4 * checkpoint_size)

    def after(self, frames: int) -> list[bytes]:
        """The frames a checkpoint covering ``frames`` has not seen."""
        if frames < self.start:
            raise HelperGone(f"its checkpoint covers {frames} frames, and the proxy forgot {self.start}")
        return list(self.frames)[frames - self.start:]


class HelperProcess:
    def __init__(self, on_messages: Callable[[list], None], on_gone: Callable[[HelperGone], None],
                 loop=None) -> None:
        """``on_messages`` takes the replies as they come; ``on_gone`` hears when the
        event loop finds the helper gone. ``loop``: mitmproxy's event loop, which
        writes what the pipe did not take and reads replies; without one (tests
        driving the hooks), writes wait."""
        self.on_messages = on_messages
        self.on_gone = on_gone
        self.loop = loop
        if getattr(sys, "frozen", False):
            raise HelperGone("this mitmproxy is a standalone binary, which cannot run Python modules")
        self.directory = tempfile.mkdtemp(prefix="cors-addon-")
        self.proc = _spawn(self.directory)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.in_fd, self.out_fd = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        for fd in (self.in_fd, self.out_fd):
            os.set_blocking(fd, False)
            _widen(fd)
        self.pid = self.proc.pid
        self.closed = False
        self.gone: list[str] = []
        """Flows the proxy dropped since the last batch, told to the helper with the next."""
        self._buffer = bytearray()
        self._batch: list[bytes] = []
        self._out: deque[memoryview] = deque()
        """Frames, or what is left of them, that the pipe has not taken yet."""
        self._writing = False
        self.journal = Journal()
        self.liveness = Liveness(self.pid)
        if loop is not None:
            loop.add_reader(self.out_fd, self._read_soon)

    @property
    def pending(self) -> bool:
        return bool(self._batch)

    @property
    def started(self) -> bool:
        return self.liveness.started

    def send(self, message) -> None:
        """Queue a message (ValueError, and nothing queued, when marshal cannot write it)."""
        self._batch.append(wire.encode(message))
        if len(self._batch) >= BATCH:
            self.flush()

    def flush(self) -> None:
        """Frame the batch, journal it and write what the pipe takes; read the replies
        already there first. An event loop that replays a file (``mitmdump -nr``) never
        runs its readers until the file is done: without this read, no checkpoint
        reached the journal and it grew with the whole replay."""
        self._read()
        if self._batch:
            if self.gone:
                self._batch.append(wire.encode(wire.Gone(self.gone)))
                self.gone = []
            data = wire.frame(self._batch)
            self._batch = []
            self.journal.append(data)
            self._out.append(memoryview(data))
        self._write()
        if self.journal.size > self.journal.limit:
            raise HelperGone(f"it fell {self.journal.size >> 20} MiB behind")

    def _write(self) -> None:
        out = self._out
        while out:
            if self.closed:
                raise HelperGone(self._why("it exited"))
            try:
                written = os.write(self.in_fd, out[0])
            except BlockingIOError:
                self._read()
                if self.loop is None:
                    self._wait(select.POLLOUT, STALL_SECONDS)
                    continue
                self.liveness.check()
                if not self._writing:
                    self._writing = True
                    self.loop.add_writer(self.in_fd, self._write_soon)
                return
            except OSError as exc:
                raise HelperGone(self._why(f"its input closed ({exc.strerror or exc})")) from None
            self.liveness.progress()
            if written == len(out[0]):
                out.popleft()
            else:
                out[0] = out[0][written:]
        if self._writing:
            self._writing = False
            self.loop.remove_writer(self.in_fd)

    def _write_soon(self) -> None:
        self._guarded(self._write)

    def _read_soon(self) -> None:
        self._guarded(self._read_or_end)

    def _read_or_end(self) -> None:
        self._read()
        if self.closed:
            raise HelperGone(self._why("it exited"))

    def _guarded(self, action: Callable[[], None]) -> None:
        """From the event loop: a helper gone is told to ``on_gone``."""
        try:
            action()
        except HelperGone as exc:
            self._stop_watching()
            self.on_gone(exc)

    def _read(self) -> list:
        """Read every reply already there (until the end, on a blocking pipe), act on
        the pipe's own (hello, checkpoints) and hand the others, checkpoints too (the
        backend keeps state per checkpoint), to ``on_messages``; those."""
        while True:
            try:
                chunk = os.read(self.out_fd, 1 << 20)
            except BlockingIOError:
                break
            except OSError as exc:
                raise HelperGone(self._why(f"its output broke ({exc.strerror or exc})")) from None
            if not chunk:
                if not self.closed:
                    self.closed = True
                    self._stop_watching()
                break
            self.liveness.progress()
            self._buffer += chunk
        got = []
        for message in wire.frames(self._buffer):
            kind = type(message)
            if kind is wire.Hello:
                self.liveness.started = True
                continue
            if kind is wire.Checkpoint:
                self.journal.checkpoint(message.frames, message.size)
            got.append(message)
        if got:
            self.on_messages(got)
        return got

    def wait_for(self, kind: type, timeout: float):
        """Flush, then read replies until one of ``kind`` arrives; HelperGone when the
        helper exits, stalls, or ``timeout`` passes."""
        self.flush()
        deadline = time.monotonic() + timeout
        while True:
            for message in self._read():
                if type(message) is kind:
                    return message
            if self.closed:
                raise HelperGone(self._why("it exited"))
            left = deadline - time.monotonic()
            if left <= 0:
                raise HelperGone(f"no reply in {timeout:.0f} s")
            self._wait(select.POLLOUT if self._out else 0, left)
            if self._out:
                self._write()

    def _wait(self, mask: int, timeout: float) -> None:
        """Wait, at most ``timeout`` and never more than ``STALL_SECONDS`` at a time,
        for a reply (or for room in the pipe, with ``POLLOUT`` in ``mask``)."""
        poller = select.poll()  # not select: a busy proxy's descriptors may pass 1024
        poller.register(self.out_fd, select.POLLIN)
        if mask & select.POLLOUT:
            poller.register(self.in_fd, select.POLLOUT)
        if poller.poll(min(timeout, STALL_SECONDS) * 1000):
            self.liveness.progress()
        else:
            self.liveness.check()

    def recover(self):
        """End the helper and hand its analysis over: its replies still in the pipe
        go to ``on_messages`` first; then the worker as its last checkpoint saved it
        (a fresh one before the first), and what it has not seen, in order: the
        journal's frames after the checkpoint, then the batch not yet sent."""
        from cors_addon.live_worker import Worker, load_checkpoint

        self._kill()
        try:
            self._read_rest()
        except HelperGone:
            pass
        try:
            saved = load_checkpoint(self.directory)
            frames, worker = saved if saved is not None else (0, Worker())
            unseen: list = self.journal.after(frames)
            unseen += [wire.decode(data) for data in self._batch]
        finally:
            self._batch = []
            self.close()
        return worker, unseen

    def _read_rest(self) -> None:
        """What the helper wrote before it ended: read to the end of its output."""
        os.set_blocking(self.out_fd, True)
        self._read()

    def _kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # it may have started processes of its own
        except OSError:
            self.proc.kill()
        self.proc.wait()

    def _stop_watching(self) -> None:
        if self.loop is not None:
            for remove, fd in ((self.loop.remove_reader, self.out_fd), (self.loop.remove_writer, self.in_fd)):
                try:
                    remove(fd)
                except (ValueError, OSError):
                    pass
        self._writing = False

    def close(self) -> None:
        """End the helper: closing its input ends it once it has read everything; one
        that never said hello has nothing to finish and is killed."""
        self._stop_watching()
        if not self.liveness.started:
            self._kill()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()  # type: ignore[union-attr]
            except OSError:
                pass
        try:
            self.proc.wait(2)
        except subprocess.TimeoutExpired:
            self._kill()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _why(self, what: str) -> str:
        code = self.proc.poll()
        if code is None:
            return what
        cause = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        words = last_words(self.directory)
        return f"{what} ({cause}{': ' + words if words else ''})"
