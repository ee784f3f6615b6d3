"""The lab's origin servers: a page origin and two API origins that get CORS right and wrong on purpose.

Three stdlib ThreadingHTTPServers on loopback with ephemeral ports:
  page  = http://127.0.0.1:P  scenario pages, /report, /done, /run (chain start)
  api   = http://127.0.0.1:A  answers from the scenario data, keyed by path
  other = http://localhost:B  same answers; a second origin so that a redirect api -> other
                              is cross-origin and taints the request (Fetch: Origin becomes null)
Page and api share the host 127.0.0.1, i.e. they are same-site, so the page's SameSite=Lax
cookie is sent on credentials:'include' fetches to the api.

Every request is logged with the server's wall clock: what reached the servers is ground
truth independent of the browser and of the proxy.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from . import page
from .scenarios import SCENARIOS, Answer, Scenario, by_name, page_loads, routes


class LabServer:
    def __init__(self, scenarios: tuple[Scenario, ...] = SCENARIOS):
        self.scenarios = scenarios
        self.routes = routes(scenarios)
        self.loads = page_loads(scenarios)
        self.log: list[dict] = []
        self.reports: list[dict] = []
        self.done: list[tuple[str, int, float]] = []
        self.all_done = threading.Event()
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._servers: dict[str, ThreadingHTTPServer] = {}

    def start(self) -> "LabServer":
        for role in ("page", "api", "other"):
            srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
            srv.daemon_threads = True
            srv.lab, srv.role = self, role
            self._servers[role] = srv
            threading.Thread(target=srv.serve_forever, name=f"lab-{role}", daemon=True).start()
        ports = {role: srv.server_address[1] for role, srv in self._servers.items()}
        self.ports = ports
        self.origins = {
            "page": f"http://127.0.0.1:{ports['page']}",
            "api": f"http://127.0.0.1:{ports['api']}",
            "other": f"http://localhost:{ports['other']}",
        }
        return self

    def stop(self) -> None:
        for srv in self._servers.values():
            srv.shutdown()
            srv.server_close()

    def page_url(self, scn: Scenario, page_index: int, chain: bool = False) -> str:
        url = f"{self.origins['page']}/scenario/{scn.name}?page={page_index}"
        return url + "&chain=1" if chain else url

    def wait_done(self, name: str, page_index: int, timeout: float, poll=None) -> bool:
        """Wait for the page's /done; `poll` lets a caller keep its own event loop turning."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if any(d[0] == name and d[1] == page_index for d in self.done):
                    return True
            if poll:
                poll()
            else:
                time.sleep(0.05)
        return False

    def record(self, entry: dict) -> None:
        with self._lock:
            self.log.append(entry)

    def _next_url(self, name: str, page_index: int) -> str | None:
        idx = next(i for i, (s, p) in enumerate(self.loads) if s.name == name and p == page_index)
        if idx + 1 < len(self.loads):
            s, p = self.loads[idx + 1]
            return self.page_url(s, p, chain=True)
        return None

    def page_response(self, path: str, query: dict, method: str, body: bytes):
        """(status, headers, body) for the page origin."""
        if path.startswith("/scenario/") and method == "GET":
            scn = by_name(self.scenarios).get(path[len("/scenario/"):])
            if scn is None:
                return 404, [], b""
            idx = int(query.get("page", ["0"])[0])
            nxt = self._next_url(scn.name, idx) if query.get("chain") else None
            headers = [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store"),
                       ("Set-Cookie", "lab=1; Path=/")]
            return 200, headers, page.render(scn, idx, self.origins, nxt)
        if path == "/run":
            scn, idx = self.loads[0]
            return 302, [("Location", self.page_url(scn, idx, chain=True)), ("Cache-Control", "no-store")], b""
        if path == "/report" and method == "POST":
            report = json.loads(body)
            report["t_server"] = time.time()
            with self._lock:
                self.reports.append(report)
            return 204, [], b""
        if path == "/done" and method == "POST":
            name, idx = query["scenario"][0], int(query["page"][0])
            with self._lock:
                self.done.append((name, idx, time.time()))
                if (name, idx) == (self.loads[-1][0].name, self.loads[-1][1]):
                    self.all_done.set()
            return 204, [], b""
        return 404, [], b""

    def api_response(self, path: str, method: str, headers, role: str):
        route = self.routes.get(path)
        if route is None:
            return 404, [], b""
        is_preflight = method == "OPTIONS" and "Access-Control-Request-Method" in headers
        answer: Answer = route[0] if is_preflight else route[1]
        if answer.delay_ms:
            time.sleep(answer.delay_ms / 1000)
        env = {
            "origin": headers.get("Origin", ""),
            "acrm": headers.get("Access-Control-Request-Method", ""),
            "acrh": headers.get("Access-Control-Request-Headers", ""),
            "api_port": str(self.ports["api"]),
            "scn": "/" + path.split("/")[1] + "/",
            **self.origins,
        }
        out = []
        for name, value in answer.headers:
            rendered = value.format(**env)
            if rendered:
                out.append((name, rendered))
        if answer.location:
            out.append(("Location", answer.location.format(**env)))
        if not is_preflight:
            out.append(("Cache-Control", "no-store"))
        body = b"" if is_preflight or 300 <= answer.status < 400 else b"ok\n"
        if body:
            out.append(("Content-Type", "text/plain"))
        return answer.status, out, body


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "cors-lab"
    sys_version = ""

    def log_message(self, format, *args):
        pass

    def __getattr__(self, name):
        # Any method, including lowercase ones like `patch` that fetch() does not normalise.
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)

    def _handle(self):
        lab: LabServer = self.server.lab
        role: str = self.server.role
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        lab.record({
            "t": time.time(), "server": role, "origin_port": self.server.server_address[1],
            "method": self.command, "path": split.path + (f"?{split.query}" if split.query else ""),
            "host": self.headers.get("Host", ""), "headers": [[k, v] for k, v in self.headers.items()],
        })
        if role == "page":
            status, headers, out = lab.page_response(split.path, parse_qs(split.query), self.command, body)
        else:
            status, headers, out = lab.api_response(split.path, self.command, self.headers, role)
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        if out and self.command != "HEAD":
            self.wfile.write(out)
