"""The benchmark machinery at tiny sizes (CI), and what the performance work relies on.

Benchmarks are not timed tests: ``scripts/bench`` measures and judges the budgets; this
only checks that it runs, that the generated recordings parse and give sensible
counts, and that every fast path gives the same answers as the path it shortcuts.
"""

from __future__ import annotations

import dataclasses
import io
import json
import subprocess
import sys

import pytest

from cors_addon.audit import analyze
from cors_addon.cli import main
from cors_addon.engines import get_engine
from cors_addon.exchange import Exchange
from cors_addon.headers import Headers
from cors_addon.pages import FOLDED_PAGE, PageTracker
from cors_addon.progress import Progress
from cors_addon.sources.load import load_recording
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))

from benchlib.render import write_har, write_mitm  # noqa: E402
from benchlib.timing import Pair, Run  # noqa: E402
from benchlib.traffic import generate  # noqa: E402


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    d = tmp_path_factory.mktemp("bench")
    session = generate(400)
    write_har(session, str(d / "s.har"))
    write_mitm(session, str(d / "s.mitm"))
    return d, session


def test_generated_recordings_parse_with_sensible_counts(recordings):
    d, session = recordings
    assert len(session.exchanges) == 400
    har = load_recording(str(d / "s.har"), keep_source=False)
    mitm = load_recording(str(d / "s.mitm"))
    assert len(har.exchanges) == len(mitm.exchanges) == 400 and not har.warnings and not mitm.warnings
    engine = get_engine("chromium")
    a = analyze(har.exchanges, engine, pages=har.pages).summary
    b = analyze(mitm.exchanges, engine).summary
    assert a["exchanges"] == 400 and a["pages"] == len(session.pages) > 5
    kinds = a["kinds"]
    assert kinds["same-origin"] > 100 and kinds["simple"] > 20 and kinds["preflight"] > 10
    assert kinds["preflighted"] > kinds["preflight"]  # Max-Age 600: most calls reuse a cached answer
    assert a["redundant_preflights"] > 0
    # The HAR (Chrome's pages) and the flow file (pages from navigations) tell the same story.
    for key in ("pages", "preflights", "redundant_preflights", "blocked", "cross_origin_requests", "kinds"):
        assert a[key] == b[key], key


def _exchanges(rec) -> list[dict]:
    out = []
    for ex in rec.exchanges:
        d = {f.name: getattr(ex, f.name) for f in dataclasses.fields(Exchange)}
        d["request_headers"], d["response_headers"] = list(ex.request_headers), list(ex.response_headers)
        out.append(d)
    return out


def _outcome(path: str, **kw):
    try:
        rec = load_recording(path, **kw)
    except Exception as exc:  # the same error either way
        return repr(exc)
    return _exchanges(rec), rec.pages, rec.warnings


@pytest.mark.parametrize("path", sorted(
    str(p) for p in [*ROOT.glob("recordings/*/*.har"), *ROOT.glob("tests/bad_inputs/corpus/*")] if p.is_file()))
def test_fast_har_reader_gives_what_the_tolerant_reader_gives(path):
    assert _outcome(path, keep_source=False) == _outcome(path)


def test_fast_har_reader_on_generated_traffic(recordings):
    d, _ = recordings
    fast = load_recording(str(d / "s.har"), keep_source=False)
    assert fast.har is None  # the fast path was taken
    assert _outcome(str(d / "s.har"), keep_source=False) == _outcome(str(d / "s.har"))


def test_json_report_is_the_same_text_with_or_without_msgspec(recordings, monkeypatch):
    from cors_addon.writers import render

    d, _ = recordings
    rec = load_recording(str(d / "s.har"), keep_source=False)
    report = analyze(rec.exchanges, get_engine("chromium"), pages=rec.pages)
    fast = render([("s.har", report)], "json")
    monkeypatch.setitem(sys.modules, "msgspec", None)  # import fails: the standard library writes it
    assert render([("s.har", report)], "json") == fast


def test_jobs_keep_output_order_messages_and_exit_code(recordings, tmp_path, capsys):
    d, _ = recordings
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(5):
        write_har(generate(60, seed=100 + i), str(folder / f"r{i}.har"))
    (folder / "r2b.har").write_text('{"log": {"entries": [{"request": {}}]}}')  # a warning
    (folder / "r3b.har").write_text("{ not json")  # unreadable: exit 3, the others still audited
    runs = []
    for jobs in ("1", "2"):
        code = main([str(folder), "--format", "json", "--jobs", jobs])
        out, err = capsys.readouterr()
        runs.append((code, out, err))
    assert runs[0] == runs[1]
    code, out, err = runs[0]
    assert code == 3 and "r3b.har" in err and "r2b.har" in err
    assert [r["recording"].rsplit("/", 1)[1] for r in json.loads(out)["recordings"]] == [
        "r0.har", "r1.har", "r2.har", "r2b.har", "r3.har", "r4.har"]


def test_page_tallies_are_bounded_and_totals_stay_exact():
    def navigation(i):
        headers = Headers([("Sec-Fetch-Dest", "document"), ("Sec-Fetch-Mode", "navigate")])
        return Exchange(id=f"n{i}", method="GET", url=f"https://app.test/{i}", request_headers=headers,
                        status=200, started=float(i))

    bounded, unbounded = PageTracker(max_pages=50), PageTracker()
    for i in range(500):
        for tracker in (bounded, unbounded):
            page = tracker.assign(navigation(i))
            tracker.pages[page].requests += 1
    assert len(bounded.pages) == 51 and FOLDED_PAGE in bounded.pages
    assert list(bounded.pages)[-1] == list(unbounded.pages)[-1] == "page_500"  # same ids
    assert sum(p.requests for p in bounded.pages.values()) == 500
    assert sum(p.folded or 1 for p in bounded.pages.values()) == len(unbounded.pages) == 500
    assert bounded.pages["page_3"] is bounded.pages[FOLDED_PAGE]  # a folded page's late results still count


def test_progress_bar_only_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    quiet, pipe, tty = Tty(), io.StringIO(), Tty()
    for stream, enabled in ((quiet, False), (pipe, True), (tty, True)):
        bar = Progress("cors-audit:", stream, enabled=enabled)
        bar.update(50_000, 100_000, " exchanges")
        bar.clear()
    assert quiet.getvalue() == "" and pipe.getvalue() == ""
    assert "50% (50,000/100,000 exchanges)" in tty.getvalue() and tty.getvalue().endswith("\r\033[K")


def _pair(ours: list[float], base: list[float]) -> Pair:
    return Pair("t", [Run(w, w, 0, 0) for w in ours], [Run(w, w, 0, 0) for w in base])


def test_side_by_side_ratio_ignores_a_slow_spell_and_cancels_drift():
    """The live ratio's estimator, on runs this machine gave (seconds, 100k-flow
    replays, ours then the bare replay): a slow spell on one run of the last pair."""
    spell = _pair([124.72, 121.31, 125.31, 218.29], [125.77, 120.93, 127.64, 139.02])
    assert 0.985 < spell.ratio < 1.0
    # equal commands, each run 4 % slower than the one before; the pairs alternate which
    # runs first (ours, base | base, ours | ...), so each order is off by 4 % its own way
    runs = [1 + 0.04 * k for k in range(8)]
    drift = _pair([runs[0], runs[3], runs[4], runs[7]], [runs[1], runs[2], runs[5], runs[6]])
    assert max(abs(r - 1) for r in drift.pair_ratios) > 0.03
    assert drift.ratio == pytest.approx(1.0, abs=0.002)


def test_bench_runs_at_smoke_size(tmp_path):
    """The whole of scripts/bench at tiny sizes: every benchmark runs and reports."""
    result = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchlib.run", "--smoke", "--out", str(tmp_path), "--json", str(result)],
        cwd=ROOT / "scripts", capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(result.read_text())
    assert set(doc["har"]) == {"100", "300"} and doc["har"]["300"]["summary"]["exchanges"] == 300
    assert doc["live"]["100"]["ratio"] > 0 and doc["many"]["speedup"] > 0
    assert len(doc["live"]["100"]["pairs"]) == len(doc["live_noise"]["pairs"]) == 1
    assert doc["steal_s"] >= doc["live"]["100"]["steal_s"] >= 0 and "the hypervisor took" in proc.stdout
    dispatch = doc["live_dispatch"]  # CPU per flow of each configuration (one round: no order to expect)
    assert min(dispatch["bare"], dispatch["noop"], dispatch["cors_addon"]) > 0 and dispatch["flows"] == 50
    points = doc["memory"]["points"]
    assert [p["flows"] for p in points] == [1000, 2000, 3000, 4000]
    # the analysis ran in the helper process, whose memory is counted; the addon's own
    # index holds only flows whose verdict has not arrived yet
    assert points[-1]["helper_rss_mib"] > 0 and points[-1]["state"]["live_flows"] < 1000
    assert "passed" in proc.stdout
