"""A real mitmdump with the addon loaded, and a loopback server behind it, for the
tests that must see what the proxy itself does and prints."""

from __future__ import annotations

import contextlib
import pathlib
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from tests.conftest import ROOT



@contextlib.contextmanager
def serve(handler: type[BaseHTTPRequestHandler],
          server: type[ThreadingHTTPServer] = ThreadingHTTPServer) -> Iterator[str]:
    """A server on a free loopback port; its base URL."""
    httpd = server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


class Mitmdump:
    """``mitmdump -s cors_addon.py`` listening on a free loopback port. Its output is
    read as UTF-8 with ``surrogateescape``, so a byte that is not UTF-8 shows up as a
    lone surrogate rather than stopping the reader."""

    def __init__(self, *args: str) -> None:
        mitmdump = pathlib.Path(sys.executable).with_name("mitmdump")
        self.proc = subprocess.Popen(
            [str(mitmdump), "--listen-host", "127.0.0.1", "-p", "0", "--set", "flow_detail=0",
             "-s", str(ROOT / "cors_addon.py"), *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, encoding="utf-8", errors="surrogateescape", cwd=ROOT,
        )
        self.lines: list[str] = []
        self._port = threading.Event()
        self.port = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._port.wait(30):
            self.stop()
            raise AssertionError("mitmdump did not start:\n" + "\n".join(self.lines))

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            m = re.search(r"listening at .*:(\d+)", line)
            if m and not self._port.is_set():
                self.port = int(m.group(1))
                self._port.set()

    def opener(self):
        return urllib.request.build_opener(urllib.request.ProxyHandler({"http": f"http://127.0.0.1:{self.port}"}))

    def stop(self) -> int:
        """SIGINT, as a terminal's Ctrl-C: mitmdump runs its ``done`` hooks and exits."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(10)
        return self.proc.returncode
