"""Shared plumbing for the browser drivers: arguments, lab server, mitmdump lifecycle, outputs.

mitmdump writes its `hardump` HAR only in the `done` hook, i.e. on a clean shutdown, so it
is stopped with SIGINT and waited for. Both `-w` (save.py) and `hardump` (savehar.py) honour
`save_stream_filter`, which keeps background hosts out of the recordings.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .server import LabServer

REPO = Path(__file__).resolve().parents[2]
GUARD = Path(__file__).with_name("proxy_guard.py")
LAB_FILTER = '~d "^(127[.]0[.]0[.]1|localhost)$"'


def parse_args(browser: str) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=f"Record the CORS lab with {browser} through mitmdump.")
    ap.add_argument("--out", type=Path, default=REPO / "recordings" / f"lab-{browser}")
    ap.add_argument("--addon", type=Path, help="extra mitmproxy script for mitmdump to load (e.g. cors_addon.py)")
    return ap.parse_args()


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server() -> LabServer:
    return LabServer().start()


class MitmDump:
    """A mitmdump child whose stdout+stderr go to a log with a wall-clock stamp per line."""

    def __init__(self, out_dir: Path, addon: Path | None):
        self.out_dir = out_dir
        self.port = free_port()
        exe = Path(sys.executable).with_name("mitmdump")
        cmd = [str(exe), "--listen-host", "127.0.0.1", "-p", str(self.port), "-s", str(GUARD)]
        if addon:
            cmd += ["-s", str(addon.resolve())]
        cmd += ["-w", str(out_dir / "flows.mitm"), "--set", f"hardump={out_dir / 'flows.har'}",
                "--set", f"save_stream_filter={LAB_FILTER}"]
        self.cmd = cmd
        self._log = open(out_dir / "mitmdump.log", "w", encoding="utf-8")
        self._listening = threading.Event()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     cwd=REPO, text=True, errors="replace", bufsize=1)
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self._log.write(f"{now_iso()} {line.rstrip()}\n")
            self._log.flush()
            if "listening at" in line:
                self._listening.set()

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mitmdump exited early ({self.proc.returncode}); see {self._log.name}")
            if self._listening.wait(0.1):
                return
        raise RuntimeError("mitmdump did not start listening")

    def stop(self, timeout: float = 60) -> int:
        """SIGINT, then wait: the HAR is only written on a clean exit."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(10)
        self._log.close()
        return self.proc.returncode


def prepare_out(out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("flows.mitm", "flows.har", "truth.json", "mitmdump.log"):
        (out_dir / name).unlink(missing_ok=True)
    return out_dir


def write_truth(out_dir: Path, truth: dict) -> None:
    (out_dir / "truth.json").write_text(json.dumps(truth, indent=1) + "\n", encoding="utf-8")


def check_outputs(out_dir: Path) -> None:
    """Fail loudly if mitmdump did not leave both recordings behind."""
    for name in ("flows.mitm", "flows.har"):
        path = out_dir / name
        if not path.exists() or path.stat().st_size == 0:
            raise SystemExit(f"missing or empty {path}")
    har = json.loads((out_dir / "flows.har").read_text())
    hosts = {e["request"]["url"].split("/")[2].rsplit(":", 1)[0] for e in har["log"]["entries"]}
    if not hosts <= {"127.0.0.1", "localhost"}:
        raise SystemExit(f"non-lab hosts in HAR: {sorted(hosts)}")


def log(msg: str) -> None:
    print(f"[lab {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def kill_group(proc: subprocess.Popen, timeout: float = 10) -> None:
    """Stop a child started in its own session (group id = its pid), then any helper left in that group."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def summarize(result: dict) -> None:
    steps = [s for scn in result["scenarios"] for s in scn["steps"]]
    blocked = [s for s in steps if s["outcome"] == "blocked"]
    missing = [s["id"] for s in steps if s["outcome"] is None]
    log(f"{result['browser']}: {len(result['scenarios'])} scenarios, {len(steps)} steps, {len(blocked)} blocked, "
        f"{sum(scn['server']['preflights'] for scn in result['scenarios'])} preflights at server, "
        f"{len(result['disagreements'])} disagreements, {len(missing)} steps without report {missing}")


@dataclass
class Session:
    """What a browser driver reports back about its run."""

    version: str
    closed_at: float
    page_urls: dict[str, list[str]]
    matcher: Callable
    notes: str = "WARNING {browser} disagrees with expect"


def run_lab(browser: str, drive: Callable[[LabServer, "MitmDump"], Session]) -> dict:
    """Start the lab server and mitmdump, let ``drive`` run the browser through them,
    stop both cleanly (the HAR is written on exit), then build and check the truth."""
    from . import truth

    args = parse_args(browser)
    out = prepare_out(args.out)
    server = start_server()
    proxy = MitmDump(out, args.addon)
    proxy.wait_ready()
    log(f"server {server.origins}, proxy {proxy.url}")
    recorded_at, started = now_iso(), time.monotonic()
    try:
        session = drive(server, proxy)
    finally:
        rc = proxy.stop()
        server.stop()
    run_seconds = round(time.monotonic() - started, 1)
    log(f"{browser} run took {run_seconds}s; mitmdump exit {rc}")
    result = truth.build(browser, session.version, server, session.matcher, recorded_at, session.closed_at,
                         session.page_urls)
    result["run_seconds"] = run_seconds
    write_truth(out, result)
    check_outputs(out)
    for d in result["disagreements"]:
        log(f"{session.notes.format(browser=browser)}: {d}")
    summarize(result)
    return result
