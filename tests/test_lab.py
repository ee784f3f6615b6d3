"""The browser is the oracle: engine verdicts against real Chromium and Firefox ESR.

The committed lab recordings (``recordings/lab-*``, made by ``scripts/record-lab``) are
checked on every run. With a browser installed, Chromium is also driven afresh through
mitmdump with the addon loaded, which tests live mode too. Without one these tests skip
with a message, except under ``CI=true`` where a missing browser is a failure.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
from datetime import datetime

import pytest

from tests.lab.compare import compare, load, page_tallies
from tests.conftest import CHROMIUM, FIREFOX, ROOT, require_browser

BROWSERS = {"chromium": CHROMIUM, "firefox": FIREFOX}


def check_agreement(lab: pathlib.Path, browser: str) -> None:
    truth, report = load(lab)
    checks = compare(truth, report, with_reason=browser == "chromium")
    assert checks, "the lab recorded no steps"
    disagreements = [(c.scenario, c.step, c.truth, c.engine) for c in checks if not c.agrees]
    assert disagreements == []
    tallies = page_tallies(truth, report)
    assert [(r[0], r[1], r[3]) for r in tallies] == [(r[0], r[2], r[4]) for r in tallies]


@pytest.mark.parametrize("browser", sorted(BROWSERS))
def test_committed_lab_recording_agrees_with_the_browser(browser):
    lab = ROOT / "recordings" / f"lab-{browser}"
    check_agreement(lab, browser)


def test_lab_covers_every_chromium_cors_error_reachable_on_http():
    truth = json.loads((ROOT / "recordings/lab-chromium/truth.json").read_text())
    seen = {s["cors_error"] for sc in truth["scenarios"] for s in sc["steps"] if s["cors_error"]}
    reachable = {
        "WildcardOriginNotAllowed", "MissingAllowOriginHeader", "MultipleAllowOriginValues", "InvalidAllowOriginValue",
        "AllowOriginMismatch", "InvalidAllowCredentials", "PreflightInvalidStatus", "PreflightDisallowedRedirect",
        "PreflightWildcardOriginNotAllowed", "PreflightMissingAllowOriginHeader", "PreflightMultipleAllowOriginValues",
        "PreflightInvalidAllowOriginValue", "PreflightAllowOriginMismatch", "PreflightInvalidAllowCredentials",
        "InvalidAllowMethodsPreflightResponse", "InvalidAllowHeadersPreflightResponse",
        "MethodDisallowedByPreflightResponse", "HeaderDisallowedByPreflightResponse", "RedirectContainsCredentials",
    }
    assert reachable <= seen


def test_har_and_flow_file_of_a_lab_run_give_the_same_verdicts():
    lab = ROOT / "recordings/lab-chromium"
    truth, from_mitm = load(lab, "flows.mitm")
    _, from_har = load(lab, "flows.har")
    verdicts = lambda report: sorted((f.method, f.url, f.kind, f.verdict, f.cors_error, f.redundant) for f in report.flows)
    assert verdicts(from_har) == verdicts(from_mitm)


@pytest.mark.browser
@pytest.mark.parametrize("browser", sorted(BROWSERS))
def test_fresh_lab_run_with_the_addon_live(browser, tmp_path):
    """Re-record the lab now, with cors_addon.py loaded into mitmdump: verdicts must
    agree, and the addon's BLOCKED lines must appear while the browser still runs."""
    require_browser(BROWSERS[browser])
    out = tmp_path / browser
    proc = subprocess.run(
        [sys.executable, "-m", f"scripts.lab.run_{browser}", "--out", str(out), "--addon", str(ROOT / "cors_addon.py")],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    check_agreement(out, browser)
    truth = json.loads((out / "truth.json").read_text())
    blocked_lines = [line for line in (out / "mitmdump.log").read_text().splitlines() if " BLOCKED " in line]
    assert blocked_lines, "the addon logged no blocked flow"
    first = datetime.fromisoformat(blocked_lines[0].split()[0]).timestamp()
    assert first < truth["browser_closed_at"]
