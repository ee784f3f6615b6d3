"""Record the lab with real headless Chromium (Playwright, system binary) through mitmdump.

One persistent profile / browser context for the whole run, like a real user's: Chromium's
preflight cache lives in the profile's NetworkContext and survives navigations, which the
cache-page-loads scenario relies on. Every other scenario uses its own API paths, so nothing
leaks between them.

CDP is the only place Chromium exposes *why* a request failed: `Network.loadingFailed`
carries `corsErrorStatus {corsError, failedParameter}` on the actual request, and a preflight
is its own request with `initiator {type: "preflight", requestId: <actual request>}`.
"""

from __future__ import annotations

import tempfile
import time
from urllib.parse import urlsplit

from playwright.sync_api import sync_playwright

from .common import Session, log, run_lab
from .page import step_url

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


class CdpLog:
    """Requests seen through CDP, keyed by requestId, in the order they were first sent."""

    def __init__(self):
        self.requests: dict[str, dict] = {}
        self.preflights: dict[str, list[str]] = {}

    def attach(self, cdp) -> None:
        cdp.on("Network.requestWillBeSent", self._sent)
        cdp.on("Network.loadingFailed", self._failed)
        cdp.on("Network.responseReceived", self._response)
        cdp.send("Network.enable")

    def _sent(self, ev: dict) -> None:
        rid, initiator = ev["requestId"], ev.get("initiator", {})
        if rid in self.requests:
            self.requests[rid]["redirects"].append(ev["request"]["url"])
            return
        self.requests[rid] = {
            "url": ev["request"]["url"], "method": ev["request"]["method"], "initiator": initiator.get("type"),
            "redirects": [], "status": None, "error_text": None, "cors": None,
        }
        if initiator.get("type") == "preflight":
            self.preflights.setdefault(initiator.get("requestId"), []).append(rid)

    def _failed(self, ev: dict) -> None:
        req = self.requests.get(ev["requestId"])
        if req is not None:
            req["error_text"] = ev.get("errorText")
            req["cors"] = ev.get("corsErrorStatus")

    def _response(self, ev: dict) -> None:
        req = self.requests.get(ev["requestId"])
        if req is not None:
            req["status"] = ev["response"]["status"]

    def step_matcher(self, server):
        """Map (scenario, step) to this log's actual (non-preflight) request, by URL+method in order."""
        used: set[str] = set()

        def extra(scn, step, report):
            url = step_url(scn, step, server.origins)
            rid = next((rid for rid, r in self.requests.items()
                        if rid not in used and r["initiator"] != "preflight" and r["url"] == url and r["method"] == step.method), None)
            if rid is None:
                log(f"WARNING chromium: no CDP request for {scn.name}/{step.id}")
                return {}
            used.add(rid)
            req, cors = self.requests[rid], self.requests[rid]["cors"] or {}
            return {
                "cors_error": cors.get("corsError"),
                "failed_parameter": cors.get("failedParameter") or None,
                "preflighted": bool(self.preflights.get(rid)),
                "cdp_preflights": len(self.preflights.get(rid, [])),
                "cdp_status": req["status"],
                "cdp_error_text": req["error_text"],
                "redirect_chain": [urlsplit(u).netloc + urlsplit(u).path for u in req["redirects"]],
            }

        return extra


def drive(server, proxy) -> Session:
    cdp_log = CdpLog()
    page_urls: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="lab-chromium-") as profile, sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=ARGS,
            proxy={"server": proxy.url, "bypass": "<-loopback>"},
        )
        page = ctx.pages[0] if ctx.pages else ctx.new_page()
        cdp = ctx.new_cdp_session(page)
        cdp_log.attach(cdp)
        version = cdp.send("Browser.getVersion")["product"]
        for scn, idx in server.loads:
            url = server.page_url(scn, idx)
            page_urls.setdefault(scn.name, []).append(url)
            page.goto(url)
            if not server.wait_done(scn.name, idx, timeout=60, poll=lambda: page.wait_for_timeout(50)):
                log(f"WARNING chromium: {scn.name} page {idx} never reported done")
        page.wait_for_timeout(200)
        ctx.close()
    return Session(version, time.time(), page_urls, cdp_log.step_matcher(server))


def cross_check(result: dict) -> None:
    """Two independent witnesses of every preflight: CDP (the browser) and the lab
    server. A step where they disagree means the truth itself is unreliable."""
    for scenario in result["scenarios"]:
        for step in scenario["steps"]:
            if step.get("cdp_preflights") != step.get("server_preflights"):
                log(f"WARNING chromium {scenario['name']}/{step['id']}: CDP saw {step.get('cdp_preflights')} "
                    f"preflights, the server {step.get('server_preflights')}")


def main() -> None:
    cross_check(run_lab("chromium", drive))


if __name__ == "__main__":
    main()
