"""Compare the engine's verdicts on a lab recording with what the browser did.

A step is one fetch in a scenario page. Its flows are found by URL (or its redirect
chain) and method within the step's time window; the step's verdict is the engine's
verdict on the request if the proxy saw it, else on its preflight (never sent).
"""

from __future__ import annotations

import json
import pathlib
from dataclasses import dataclass
from urllib.parse import urljoin

from cors_addon.audit import analyze
from cors_addon.engines import get_engine
from cors_addon.report import Report
from cors_addon.results import FlowResult
from cors_addon.sources.load import load_recording

SLACK = 0.25


@dataclass
class StepCheck:
    scenario: str
    step: str
    truth: tuple
    engine: tuple

    @property
    def agrees(self) -> bool:
        return self.truth == self.engine


def load(lab_dir: pathlib.Path, recording: str = "flows.mitm", engine: str | None = None):
    truth = json.loads((lab_dir / "truth.json").read_text())
    rec = load_recording(str(lab_dir / recording))
    report = analyze(rec.exchanges, get_engine(engine or truth["browser"]), pages=rec.pages)
    report.locations = {
        ex.id: urljoin(ex.url, ex.response_headers.get("location"))
        for ex in rec.exchanges if ex.response_headers.get("location")
    }
    return truth, report


def step_flows(step: dict, report: Report) -> list[FlowResult]:
    """The step's flows: its URL, then every hop its redirects lead to."""
    lo, hi = step["started_at"] - SLACK, (step.get("finished_at") or step["started_at"]) + SLACK
    window = [f for f in report.flows if lo <= f.started <= hi]
    urls, out = {step["url"]}, []
    for f in sorted(window, key=lambda f: f.started):
        if f.url not in urls:
            continue
        method = f.requested["method"] if f.requested else f.method
        if method.upper() == step["method"].upper() or f.url != step["url"]:
            out.append(f)
            if f.id in report.locations:
                urls.add(report.locations[f.id])
    return out


def engine_verdict(flows: list[FlowResult], with_reason: bool) -> tuple:
    blocked = [f for f in flows if f.verdict == "blocked"]
    if blocked:
        f = next((b for b in blocked if b.kind != "preflight"), blocked[0])
        return ("blocked", f.cors_error, f.failed_parameter) if with_reason else ("blocked",)
    if any(f.verdict == "unknown" for f in flows):
        return ("unknown",)
    return ("ok", None, None) if with_reason else ("ok",)


def compare(truth: dict, report: Report, *, with_reason: bool) -> list[StepCheck]:
    checks = []
    for scenario in truth["scenarios"]:
        for step in scenario["steps"]:
            flows = step_flows(step, report)
            if with_reason:
                t = (step["outcome"], step["cors_error"], step["failed_parameter"]) if step["outcome"] == "blocked" \
                    else (step["outcome"], None, None)
            else:
                t = (step["outcome"],)
            checks.append(StepCheck(scenario["name"], step["id"], t, engine_verdict(flows, with_reason)))
    return checks


def server_redundant(scenario: dict) -> int:
    """Redundant preflights by the server's log alone: the same question (URL, method,
    header list, origin) asked again after an earlier one was answered and its request
    followed; a credentialed question is only answered by a credentialed one (the
    credentials of a preflight are those of the request that followed it, since
    preflights never carry cookies). Parallel ones have no request in between."""
    log = sorted(scenario["server"]["requests"], key=lambda r: r["t"])

    def follow_up(pf):
        return next((r for r in log if r["method"] != "OPTIONS" and r["url"] == pf["url"]
                     and r["method"].upper() == pf["acrm"].upper() and r["t"] > pf["t"]), None)

    options = [r for r in log if r["method"] == "OPTIONS" and r["acrm"]]
    count = 0
    for i, later in enumerate(options):
        later_follow = follow_up(later)
        later_cred = bool(later_follow and later_follow["has_cookie"])
        for earlier in options[:i]:
            same = (earlier["url"], earlier["acrm"], earlier["acrh"] or "", earlier["origin"]) == \
                   (later["url"], later["acrm"], later["acrh"] or "", later["origin"])
            followed = follow_up(earlier)
            if not same or followed is None or followed["t"] > later["t"]:
                continue
            if later_cred and not followed["has_cookie"]:
                continue
            count += 1
            break
    return count


def page_tallies(truth: dict, report: Report) -> list[tuple[str, int, int, int, int]]:
    """Per scenario: (name, server preflights, engine preflights, server-log redundant,
    engine redundant), summed over the scenario's page loads."""
    rows = []
    for scenario in truth["scenarios"]:
        pages = [p for p in report.pages if p.url in scenario["page_urls"]]
        rows.append((
            scenario["name"],
            scenario["server"]["preflights"], sum(p.preflights for p in pages),
            server_redundant(scenario), sum(p.redundant_preflights for p in pages),
        ))
    return rows
