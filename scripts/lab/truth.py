"""Assemble truth.json from the page reports, the server log and (Chromium) CDP observations.

The page only knows ok/blocked (Fetch hides the reason from script). Chromium's reason comes
from CDP. Whether a preflight went out is taken from the server too: a cached preflight leaves
no trace on the wire, so "no OPTIONS at the server inside the step's time window" is the
browser-independent evidence of a preflight-cache hit (and the only one for Firefox).
"""

from __future__ import annotations

from typing import Callable

from .page import step_url
from .scenarios import Scenario, Step
from .server import LabServer

SCHEMA = "cors-lab-truth/1"
SLACK_S = 0.005


def _is_preflight(entry: dict) -> bool:
    return entry["method"] == "OPTIONS" and any(k.lower() == "access-control-request-method" for k, _ in entry["headers"])


def _header(entry: dict, name: str) -> str | None:
    for k, v in entry["headers"]:
        if k.lower() == name:
            return v
    return None


def server_requests(server: LabServer, scn: Scenario) -> list[dict]:
    return [e for e in server.log if e["server"] != "page" and e["path"].startswith(scn.prefix)]


def _public(entry: dict) -> dict:
    return {
        "t": entry["t"], "origin_port": entry["origin_port"], "method": entry["method"],
        "url": f"http://{entry['host']}{entry['path']}",
        "acrm": _header(entry, "access-control-request-method"),
        "acrh": _header(entry, "access-control-request-headers"),
        "origin": _header(entry, "origin"),
        "has_cookie": _header(entry, "cookie") is not None,
    }


def attribute(scn: Scenario, reports: dict[str, dict], entries: list[dict]) -> dict[str, dict[str, int]]:
    """Count server-side preflights/actual requests per step, by path and the step's [t0, t1] window."""
    counts = {s.id: {"preflights": 0, "actuals": 0} for s in scn.steps}
    for e in entries:
        path = e["path"]
        kind = "preflights" if _is_preflight(e) else "actuals"
        candidates = []
        for s in scn.steps:
            rep = reports.get(s.id)
            own = scn.step_path(s) + s.query
            if rep is None or path not in (own, scn.step_path(s) + "-target"):
                continue
            if rep["t0"] / 1000 - SLACK_S <= e["t"] <= rep["t1"] / 1000 + SLACK_S:
                candidates.append(s.id)
        if candidates:
            counts[min(candidates, key=lambda sid: counts[sid][kind])][kind] += 1
    return counts


def build(browser: str, version: str, server: LabServer, extra: Callable[[Scenario, Step, dict | None], dict],
          recorded_at: str, browser_closed_at: float, page_urls: dict[str, list[str]]) -> dict:
    scenarios = []
    disagreements = []
    for scn in server.scenarios:
        reports = {r["id"]: r for r in server.reports if r["scenario"] == scn.name}
        entries = server_requests(server, scn)
        counts = attribute(scn, reports, entries)
        steps = []
        for s in scn.steps:
            rep = reports.get(s.id)
            step = {
                "id": s.id, "method": s.method, "url": step_url(scn, s, server.origins),
                "credentials": s.credentials, "cache": s.cache,
                "outcome": rep["outcome"] if rep else None,
                "status": rep.get("status") if rep else None,
                "started_at": rep["t0"] / 1000 if rep else None, "finished_at": rep["t1"] / 1000 if rep else None,
                "cors_error": None, "failed_parameter": None, "preflighted": None,
                "js_error": rep.get("error") if rep else None,
                "server_preflights": counts[s.id]["preflights"], "server_actuals": counts[s.id]["actuals"],
                "expect": {"outcome": s.expect.outcome, "cors_error": s.expect.cors_error, "preflight": s.expect.preflight},
            }
            step.update(extra(scn, s, rep))
            steps.append(step)
            disagreements += compare(browser, scn, s, step)
        scenarios.append({
            "name": scn.name, "description": scn.description,
            "page_url": page_urls[scn.name][0], "page_urls": page_urls[scn.name],
            "steps": steps,
            "server": {"preflights": sum(map(_is_preflight, entries)), "requests": [_public(e) for e in entries]},
        })
    return {
        "schema": SCHEMA, "browser": browser, "browser_version": version, "recorded_at": recorded_at,
        "browser_closed_at": browser_closed_at, "origins": server.origins,
        "scenarios": scenarios, "disagreements": disagreements,
    }


def compare(browser: str, scn: Scenario, s: Step, step: dict) -> list[dict]:
    """Where the browser did not do what `expect` (a Chromium prediction) said."""
    seen_pf = step["preflighted"] if step["preflighted"] is not None else step["server_preflights"] > 0
    checks = [("outcome", s.expect.outcome, step["outcome"])]
    if browser == "chromium":
        checks.append(("cors_error", s.expect.cors_error, step["cors_error"]))
    if s.expect.preflight is not None:
        checks.append(("preflight", s.expect.preflight, seen_pf))
    return [
        {"scenario": scn.name, "step": s.id, "field": field, "expected": want, "actual": got}
        for field, want, got in checks if want != got
    ]
