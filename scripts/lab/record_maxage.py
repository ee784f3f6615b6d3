"""Record the before/after pair that ``cors-audit diff`` is shown and tested on.

One small app: a page that saves (PUT, JSON) and loads (GET with X-Api-Version) three
times, 5.5 s apart, then a second page load that does it once more. BEFORE, the API
answers preflights without Access-Control-Max-Age (Chromium keeps them 5 s, so every
round asks again); AFTER, with Max-Age 600 (one preflight per endpoint, none on the
second page). The API holds each preflight answer 50 ms, standing in for a network
round trip: on loopback a preflight costs ~2 ms and the saving would drown in
connection-setup noise. Both runs use the same lab server, so the origins and page URLs are the
same, and a fresh Chromium profile each, so both start with an empty preflight cache.
Only the HARs are kept: recordings/maxage-before/flows.har, recordings/maxage-after/flows.har.

    .venv/bin/python -m scripts.lab.record_maxage [--out recordings]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from .common import REPO, MitmDump, check_outputs, log, prepare_out
from .run_chromium import ARGS, CHROMIUM
from .scenarios import ACAH, GOOD_ACTUAL, Scenario, Step, ok, page_loads, preflight, routes
from .server import LabServer

NAME = "maxage"
GAP_MS = 5500
"""Longer than Chromium's 5 s default lifetime, so without Max-Age every round re-asks."""
ROUND_TRIP_MS = 50


def scenario(max_age: str | None) -> Scenario:
    def answer(methods: str):
        return preflight((ACAH, "Content-Type, X-Api-Version"), methods=methods, max_age=max_age,
                         delay_ms=ROUND_TRIP_MS)

    steps = []
    for page, rounds in ((0, 3), (1, 1)):
        for n in range(rounds):
            delay = GAP_MS if (n or page) else 0
            steps += [
                Step(f"save-p{page}-{n}", ok(), method="PUT", path="items/1", body="{}",
                     content_type="application/json", delay_ms=delay, page=page,
                     preflight=answer("PUT"), actual=GOOD_ACTUAL),
                Step(f"load-p{page}-{n}", ok(), path="profile", headers=(("X-Api-Version", "2"),), page=page,
                     preflight=answer("GET"), actual=GOOD_ACTUAL),
            ]
    return Scenario(NAME, "Save and load every 5.5 s, then a second page load.", tuple(steps))


def use(server: LabServer, scn: Scenario) -> None:
    """Serve another variant of the app on the same origins."""
    with server._lock:
        server.scenarios = (scn,)
        server.routes = routes((scn,))
        server.loads = page_loads((scn,))
        server.done.clear()
        server.log.clear()
        server.reports.clear()


def record(server: LabServer, out: Path) -> None:
    prepare_out(out)
    proxy = MitmDump(out, None)
    proxy.wait_ready()
    try:
        with tempfile.TemporaryDirectory(prefix="maxage-chromium-") as profile, sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=ARGS,
                proxy={"server": proxy.url, "bypass": "<-loopback>"},
            )
            page = ctx.pages[0] if ctx.pages else ctx.new_page()
            for scn, idx in server.loads:
                page.goto(server.page_url(scn, idx))
                if not server.wait_done(scn.name, idx, timeout=60, poll=lambda: page.wait_for_timeout(50)):
                    raise SystemExit(f"{scn.name} page {idx} never reported done")
            page.wait_for_timeout(200)
            ctx.close()
    finally:
        proxy.stop()
    check_outputs(out)
    failed = [r for r in server.reports if r.get("outcome") != "ok"]
    if failed:
        raise SystemExit(f"steps failed in {out}: {json.dumps(failed)}")
    for name in ("flows.mitm", "mitmdump.log", "truth.json"):
        (out / name).unlink(missing_ok=True)
    log(f"{out / 'flows.har'}: {(out / 'flows.har').stat().st_size} bytes")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "recordings")
    args = ap.parse_args()
    server = LabServer((scenario(None),)).start()
    try:
        record(server, args.out / "maxage-before")
        use(server, scenario("600"))
        record(server, args.out / "maxage-after")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
