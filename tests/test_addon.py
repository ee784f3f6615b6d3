"""The mitmproxy addon, with mitmproxy's own test helpers and a real mitmdump."""

import json
import pathlib
import subprocess
import sys

import pytest
from mitmproxy import exceptions, http
from mitmproxy.test import taddons, tflow

from cors_addon import live_wire as wire
from cors_addon.addon import CorsAddon
from cors_addon.live_backend import HelperBackend, InProcessBackend
from tests.conftest import ROOT

APP, API = "http://app.test", "http://api.test"


def make_flow(method, url, req_headers, status, resp_headers, t0):
    f = tflow.tflow(req=http.Request.make(method, url, b"", req_headers))
    f.request.timestamp_start, f.request.timestamp_end = t0, t0 + 0.001
    f.response = http.Response.make(status, b"", resp_headers)
    f.response.timestamp_start, f.response.timestamp_end = t0 + 0.01, t0 + 0.02
    return f


def cycle(addon, f):
    addon.request(f)
    addon.response(f)
    addon.sync()


MODES = pytest.mark.parametrize("helper", [True, False], ids=["helper-process", "in-process"])


def test_options_are_validated():
    addon = CorsAddon()
    with taddons.context(addon) as tctx:
        with pytest.raises(exceptions.OptionsError):
            tctx.configure(addon, cors_browser="opera")
        with pytest.raises(exceptions.OptionsError):
            tctx.configure(addon, cors_annotate="out.json")
        tctx.configure(addon, cors_browser="firefox")
        assert addon.browser == "firefox"
        tctx.configure(addon, cors_helper=False)
        cycle(addon, make_flow("GET", API + "/x", {"Origin": APP}, 200, {}, 1.0))
        assert type(addon.backend) is InProcessBackend
        assert addon.backend.session.analyzer.engine.name == "firefox"


@MODES
def test_blocked_preflight_is_logged_marked_and_commented(caplog, helper):
    addon = CorsAddon()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, cors_helper=helper)
        pf = make_flow("OPTIONS", API + "/items/1", {"Origin": APP, "Access-Control-Request-Method": "PUT",
                                                     "Sec-Fetch-Mode": "cors"}, 404, {}, 100.0)
        caplog.set_level("INFO")
        cycle(addon, pf)
        line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("BLOCKED"))
        assert line.startswith(f"BLOCKED PUT {API}/items/1 from {APP}: PreflightMissingAllowOriginHeader — ")
        assert "No 'Access-Control-Allow-Origin' header" in line and "Fix: Access-Control-Allow-Origin: http://app.test" in line
        assert pf.marked == ":no_entry:" and "PreflightMissingAllowOriginHeader" in pf.comment
        assert pf.metadata["cors"]["verdict"] == "blocked"


@MODES
@pytest.mark.parametrize("asked, allowed, fix", [
    ({"Access-Control-Request-Method": "PUT"}, {"Access-Control-Allow-Methods": "GET"},
     "Fix: Access-Control-Allow-Methods: GET, PUT"),
    ({"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-token"},
     {"Access-Control-Allow-Headers": "content-type"}, "Fix: Access-Control-Allow-Headers: content-type, x-token"),
], ids=["method", "headers"])
def test_the_fix_for_a_refused_preflight_allows_what_it_asked_for(caplog, helper, asked, allowed, fix):
    """The browser never sends the request after such a preflight, so the preflight's
    own line says what to allow."""
    addon = CorsAddon()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, cors_helper=helper)
        caplog.set_level("INFO")
        cycle(addon, make_flow("OPTIONS", API + "/items/2", {"Origin": APP, **asked}, 204,
                               {"Access-Control-Allow-Origin": APP, **allowed}, 1.0))
        line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("BLOCKED"))
        assert line.endswith(fix + " (the request was never sent)")


@MODES
def test_redundant_preflight_is_marked(helper):
    addon = CorsAddon()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, cors_helper=helper)
        allow = {"Access-Control-Allow-Origin": APP, "Access-Control-Allow-Methods": "PUT"}
        flows = []
        for t in (0.0, 6.0):
            pf = make_flow("OPTIONS", API + "/x", {"Origin": APP, "Access-Control-Request-Method": "PUT"}, 204, allow, t)
            put = make_flow("PUT", API + "/x", {"Origin": APP, "Sec-Fetch-Mode": "cors"}, 200, {"Access-Control-Allow-Origin": APP}, t + 0.03)
            cycle(addon, pf)
            cycle(addon, put)
            flows += [pf, put]
        assert flows[2].marked == ":repeat:" and "no-max-age" in flows[2].comment
        assert flows[0].metadata["cors"]["pair"] == flows[1].id


def test_flows_the_proxy_dropped_get_only_their_blocked_lines_back(caplog):
    """mitmdump drops each flow once it is done, before its batch goes to the helper:
    the flow leaves the addon's index at once, and its verdict, with nowhere to go,
    stays in the helper, but for the BLOCKED line. A flow someone still holds
    (mitmweb's view) gets its verdict as before. Run in an event loop, as in
    mitmproxy, so that events wait for their batch."""
    import asyncio
    import gc

    async def proxy():
        addon = CorsAddon()
        with taddons.context(addon):
            cycle(addon, make_flow("GET", API + "/first", {"Origin": APP}, 200,
                                   {"Access-Control-Allow-Origin": APP}, 1.0))
            received = []
            helper = addon.backend.helper
            forward = helper.on_messages
            helper.on_messages = lambda messages: (received.extend(messages), forward(messages))
            dropped_ids = []
            for i in range(3):
                dropped = make_flow("GET", API + f"/dropped/{i}", {"Origin": APP, "Sec-Fetch-Mode": "cors"}, 200,
                                    {}, 3.0 + i)
                addon.request(dropped)
                addon.response(dropped)
                dropped_ids.append(dropped.id)
                del dropped
            gc.collect()
            assert helper.pending and not set(dropped_ids) & set(addon._live)
            kept = make_flow("GET", API + "/kept", {"Origin": APP, "Sec-Fetch-Mode": "cors"}, 200, {}, 9.0)
            addon.request(kept)
            addon.response(kept)
            addon.sync()
            return kept, received, dropped_ids

    caplog.set_level("INFO")
    kept, received, dropped_ids = asyncio.run(proxy())
    assert kept.marked == ":no_entry:" and kept.metadata["cors"]["verdict"] == "blocked"
    verdicts = {m.flow_id: m.metadata for m in received if type(m) is wire.Verdict}
    assert type(verdicts.pop(kept.id)) is bytes and verdicts == dict.fromkeys(dropped_ids)
    blocked = [r.getMessage() for r in caplog.records if r.getMessage().startswith("BLOCKED")]
    assert [line.split()[2] for line in blocked] == [API + f"/dropped/{i}" for i in range(3)] + [API + "/kept"]


def test_a_failing_flow_never_raises_into_mitmproxy(caplog):
    addon = CorsAddon()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, cors_helper=False)
        f = make_flow("GET", API + "/x", {"Origin": APP}, 200, {}, 1.0)
        addon.request(f)
        addon.backend.session.analyzer.add = None  # any exception inside the engine
        addon.response(f)
        addon.response(f)
        assert sum("CORS analysis failed" in r.getMessage() for r in caplog.records) == 2
        assert sum("Traceback" in r.getMessage() for r in caplog.records) == 1  # traceback logged once


def test_a_flow_the_helper_cannot_analyse_is_logged_once_and_the_rest_go_on(caplog, monkeypatch):
    from cors_addon import live_wire

    real = live_wire.complete_event

    def broken(f, *args):  # what the helper receives for /boom cannot be rebuilt into a flow
        event = real(f, *args)
        return event._replace(response=("HTTP/1.1", "not a status")) if "boom" in f.request.path else event

    monkeypatch.setattr(live_wire, "complete_event", broken)
    addon = CorsAddon()
    with taddons.context(addon):
        caplog.set_level("INFO")
        boom = make_flow("GET", API + "/boom", {"Origin": APP}, 200, {}, 1.0)
        cycle(addon, boom)
        cycle(addon, make_flow("GET", API + "/boom2", {"Origin": APP}, 200, {}, 1.1))
        blocked = make_flow("GET", API + "/after", {"Origin": APP, "Sec-Fetch-Mode": "cors"}, 200, {}, 1.2)
        cycle(addon, blocked)
        assert type(addon.backend) is HelperBackend  # the helper is still the one analysing
        messages = [r.getMessage() for r in caplog.records]
        failed = [m for m in messages if "CORS analysis failed" in m]
        assert len(failed) == 2 and f"{API}/boom" in failed[0] and "Traceback" in failed[0]
        assert "Traceback" not in failed[1]
        assert blocked.marked == ":no_entry:"
        assert any(m.startswith(f"BLOCKED GET {API}/after") for m in messages)


def test_when_the_helper_stops_the_analysis_goes_on_in_process_with_nothing_lost(caplog):
    addon = CorsAddon()
    with taddons.context(addon):
        caplog.set_level("INFO")
        cycle(addon, make_flow("GET", API + "/first", {"Origin": APP}, 200, {"Access-Control-Allow-Origin": APP}, 1.0))
        in_flight = make_flow("GET", API + "/in-flight", {"Origin": APP, "Sec-Fetch-Mode": "cors"}, 200, {}, 1.5)
        addon.request(in_flight)
        addon.backend.helper.flush()
        addon.backend.helper.proc.kill()
        addon.backend.helper.proc.wait()
        addon.response(in_flight)
        later = make_flow("GET", API + "/later", {"Origin": APP, "Sec-Fetch-Mode": "cors"}, 200, {}, 2.0)
        cycle(addon, later)
        cycle(addon, make_flow("GET", API + "/last", {"Origin": APP}, 200, {}, 3.0))
        assert type(addon.backend) is InProcessBackend
        messages = [r.getMessage() for r in caplog.records]
        assert sum("CORS helper process stopped" in m for m in messages) == 1
        assert sum("nothing lost" in m for m in messages) == 1
        assert later.marked == in_flight.marked == ":no_entry:"
        assert [m.split()[2] for m in messages if m.startswith("BLOCKED")] == [API + "/in-flight", API + "/later"]
        assert addon.backend.session.analyzer.exchanges == 4


def test_a_helper_whose_analysis_cannot_be_recovered_leaves_a_report_that_says_so(caplog, monkeypatch, tmp_path):
    """The one way the live report can miss flows: the helper is gone and its
    checkpoint cannot be read. The analysis goes on from there, and the exit line and
    the report itself say what is missing."""
    from cors_addon import live_worker

    def unreadable(directory):
        raise ValueError("a checkpoint cut short")

    monkeypatch.setattr(live_worker, "load_checkpoint", unreadable)
    report = tmp_path / "report.json"
    addon = CorsAddon()
    with taddons.context(addon) as tctx:
        caplog.set_level("INFO")
        tctx.configure(addon, cors_report=str(report))
        for i in range(3):
            cycle(addon, make_flow("GET", API + f"/before/{i}", {"Origin": APP}, 200,
                                   {"Access-Control-Allow-Origin": APP}, 1.0 + i))
        addon.backend.helper.proc.kill()
        addon.backend.helper.proc.wait()
        cycle(addon, make_flow("GET", API + "/after", {"Origin": APP, "Sec-Fetch-Mode": "cors"}, 200, {}, 5.0))
        addon.done()
    summary = json.loads(report.read_text())["summary"]
    assert summary["exchanges"] == 1 and summary["blocked"] == 1
    assert summary["incomplete"].startswith("its analysis could not be recovered (a checkpoint cut short)")
    assert "the 3 flows before this" in summary["incomplete"]
    exit_line = [r.getMessage() for r in caplog.records if r.getMessage().startswith("CORS: ")][-1]
    assert "could not be recovered" in exit_line


@pytest.mark.parametrize("worker, timeout", [
    (["-c", "raise SystemExit(3)"], 20.0),
    (["-c", "import time; time.sleep(60)"], 1.0),
], ids=["exits", "never-says-hello"])
def test_flows_sent_to_a_helper_that_never_starts_are_analysed_here(caplog, monkeypatch, tmp_path, worker, timeout):
    """Nobody waits for the helper to start; when it never does, what was sent to it
    is analysed in mitmproxy's process and nothing is missing from the report."""
    from cors_addon import live_helper

    monkeypatch.setattr(live_helper, "worker_command", lambda: [sys.executable, *worker])
    monkeypatch.setattr(live_helper, "START_TIMEOUT", timeout)
    report = tmp_path / "report.json"
    addon = CorsAddon()
    with taddons.context(addon) as tctx:
        caplog.set_level("INFO")
        tctx.configure(addon, cors_report=str(report))
        preflight = make_flow("OPTIONS", API + "/items", {"Origin": APP, "Access-Control-Request-Method": "PUT"},
                              204, {"Access-Control-Allow-Origin": APP}, 1.0)
        flows = [preflight, make_flow("GET", APP + "/", {}, 200, {}, 0.5),
                 make_flow("GET", API + "/ok", {"Origin": APP}, 200, {"Access-Control-Allow-Origin": APP}, 2.0)]
        addon.request(preflight)
        helper = addon.backend.helper  # started, not waited for
        addon.response(preflight)
        for f in flows[1:]:
            addon.request(f)
            addon.response(f)
        addon.sync()
        assert type(addon.backend) is InProcessBackend
        last = make_flow("GET", API + "/late", {"Origin": APP, "Sec-Fetch-Mode": "cors"}, 200, {}, 3.0)
        cycle(addon, last)
        addon.done()
    messages = [r.getMessage() for r in caplog.records]
    assert not helper.started  # it never said hello
    assert sum("CORS helper process did not start" in m for m in messages) == 1
    assert not any("stopped" in m for m in messages)
    assert preflight.marked == ":no_entry:"
    assert preflight.metadata["cors"]["cors_error"] == "MethodDisallowedByPreflightResponse"
    assert last.marked == ":no_entry:" and flows[2].metadata["cors"]["verdict"] == "ok"
    doc = json.loads(report.read_text())
    assert doc["summary"]["exchanges"] == 4 and doc["summary"]["blocked"] == 2


def test_the_helper_process_ends_with_the_addon():
    addon = CorsAddon()
    with taddons.context(addon):
        cycle(addon, make_flow("GET", API + "/x", {"Origin": APP}, 200, {}, 1.0))
        proc = addon.backend.helper.proc
        addon.done()
        assert proc.poll() is not None


def test_summary_command_over_flows():
    addon = CorsAddon()
    with taddons.context(addon):
        pf = make_flow("OPTIONS", API + "/x", {"Origin": APP, "Access-Control-Request-Method": "PUT"}, 404, {}, 1.0)
        text = addon.summary([pf])
        assert "PreflightMissingAllowOriginHeader" in text and "Totals:" in text


@pytest.mark.parametrize("script", ["cors_addon.py", "cors_addon/mitmproxy_script.py"])
def test_the_script_module_is_the_addon(script):
    """Both scripts load as modules whose own names are the addon's hooks and commands
    (no ``addons`` list for mitmproxy to walk into on every event), and nothing the
    addon has as a hook is left out."""
    import mitmproxy.addonmanager
    import mitmproxy.proxy.layers.http  # noqa: F401  (registers the HTTP hooks)
    from mitmproxy.addons import script as script_addon
    from mitmproxy.hooks import all_hooks

    from cors_addon.addon import SCRIPT_HOOKS

    assert {name for name in all_hooks if hasattr(CorsAddon, name)} == set(SCRIPT_HOOKS)
    assert mitmproxy.addonmanager.LoadHook.name in SCRIPT_HOOKS
    with taddons.context() as tctx:
        module = script_addon.load_script(str(ROOT / script))
        tctx.master.addons.add(module)
        assert tctx.master.addons.get("cors") is module and not hasattr(module, "addons")
        assert {"cors.summary", "cors.report"} <= set(tctx.master.commands.commands)
        tctx.configure(module, cors_helper=False)
        flow = make_flow("OPTIONS", API + "/x", {"Origin": APP, "Access-Control-Request-Method": "PUT"}, 404, {}, 1.0)
        for hook in ("request", "response"):
            tctx.master.addons.invoke_addon_sync(module, all_hooks[hook](flow))
        assert flow.marked and "PreflightMissingAllowOriginHeader" in flow.comment
        assert type(module.addon.backend) is InProcessBackend


def test_loading_the_addon_leaves_the_analysis_unimported():
    """The analysis loads where it runs (the helper), not at every mitmproxy start."""
    code = ("import sys, runpy; runpy.run_path(sys.argv[1]); "
            "print(' '.join(m for m in sys.modules if m.startswith('cors_addon')))")
    out = subprocess.run([sys.executable, "-c", code, str(ROOT / "cors_addon.py")], capture_output=True,
                         text=True, check=True, cwd=ROOT).stdout.split()
    assert "cors_addon.addon" in out
    assert not {"cors_addon.analyzer", "cors_addon.live", "cors_addon.fetch_rules"} & set(out)


def _mitm_fixture(tmp_path, har):
    """A .mitm flow file made from a real recording with mitmproxy's own reader."""
    from mitmproxy import io

    out = tmp_path / "flows.mitm"
    with open(har, "rb") as src, open(out, "wb") as dst:
        writer = io.FlowWriter(dst)
        for f in io.FlowReader(src).stream():
            writer.add(f)
    return out


def test_mitmdump_replay_end_to_end(tmp_path):
    """mitmdump -nr flows.mitm -s cors_addon.py: logs, report and annotated HAR."""
    mitm = _mitm_fixture(tmp_path, ROOT / "recordings/wild/firefox79-nike-checkout-preflights.har")
    report, har = tmp_path / "r.json", tmp_path / "a.har"
    mitmdump = pathlib.Path(sys.executable).with_name("mitmdump")
    proc = subprocess.run(
        [str(mitmdump), "-nr", str(mitm), "-s", str(ROOT / "cors_addon.py"),
         "--set", f"cors_report={report}", "--set", f"cors_annotate={har}"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    doc = json.loads(report.read_text())
    assert doc["summary"]["preflights"] == 2 and doc["summary"]["blocked"] == 0
    assert all(f["pair"] for f in doc["flows"])
    annotated = json.loads(har.read_text())
    assert len(annotated["log"]["entries"]) == 4 and annotated["log"]["pages"]
    assert all(e["_cors"]["kind"] in ("preflight", "preflighted") for e in annotated["log"]["entries"])
    assert "CORS: 2 preflights" in proc.stdout


@MODES
def test_log_lines_and_comments_hide_secrets_unless_asked(caplog, helper):
    addon = CorsAddon()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, cors_helper=helper)
        caplog.set_level("INFO")
        url = API + "/x?access_token=s3cr3tTOKENs3cr3tTOKEN42"
        pf = make_flow("OPTIONS", url, {"Origin": APP, "Access-Control-Request-Method": "PUT"}, 204,
                       {"Access-Control-Allow-Origin": "Bearer s3cr3tTOKENs3cr3tTOKEN42"}, 1.0)
        cycle(addon, pf)
        line = next(r.getMessage() for r in caplog.records if "BLOCKED" in r.getMessage())
        assert "s3cr3tTOKEN" not in line and "s3cr3tTOKEN" not in pf.comment and "access_token=" in line
        tctx.configure(addon, cors_show_secrets=True)
        pf2 = make_flow("OPTIONS", url + "1", {"Origin": APP, "Access-Control-Request-Method": "PUT"}, 404, {}, 2.0)
        cycle(addon, pf2)
        assert any("s3cr3tTOKEN" in r.getMessage() for r in caplog.records)


def _as_the_proxy_saw_them(flows):
    """Each flow's request and completion hooks in the order of the recorded times:
    flows overlap, as they do in a proxy."""
    events = []
    for i, f in enumerate(flows):
        done_at = f.response.timestamp_end if f.response is not None else f.error.timestamp
        events += [(f.request.timestamp_start, 0, i), (done_at, 1, i)]
    return [(flows[i], hook) for _, hook, i in sorted(events)]


@pytest.mark.parametrize("recording", ["lab-chromium", "lab-firefox"])
def test_the_helper_process_and_the_in_process_analysis_agree(tmp_path, recording):
    """Every flow of a real browser session through the addon, with the hooks in the
    order the proxy saw them: the same report, the same marks, comments and verdicts
    on the flows, whether the analysis runs in mitmproxy's process, in the helper
    with every event sent at once (no event loop), or in the helper from inside an
    event loop, as in mitmproxy (events batched, verdicts read as they come)."""
    import asyncio

    from mitmproxy import io

    def run(helper: bool, report):
        with open(ROOT / "recordings" / recording / "flows.mitm", "rb") as fh:
            flows = [f for f in io.FlowReader(fh).stream() if isinstance(f, http.HTTPFlow)]
        addon = CorsAddon()
        with taddons.context(addon) as tctx:
            tctx.configure(addon, cors_helper=helper, cors_report=str(report))
            for f, hook in _as_the_proxy_saw_them(flows):
                if hook == 0:
                    f.metadata.pop("cors", None)
                    f.marked, f.comment = "", ""
                    addon.request(f)
                else:
                    addon.response(f) if f.response is not None else addon.error(f)
            addon.done()
        doc = json.loads(report.read_text())
        return (doc["summary"], doc["flows"], doc["findings"],
                [(f.marked, f.comment, f.metadata.get("cors")) for f in flows])

    async def in_a_loop(report):
        return run(True, report)

    outcomes = [run(False, tmp_path / "here.json"), run(True, tmp_path / "helper.json"),
                asyncio.run(in_a_loop(tmp_path / "loop.json"))]
    assert outcomes[0] == outcomes[1] == outcomes[2]
    assert outcomes[0][0]["blocked"] > 5 and sum(bool(m) for m, _, _ in outcomes[0][3]) > 5


def test_a_flow_with_a_value_the_wire_cannot_carry_is_logged_and_skipped_not_the_batch(caplog):
    addon = CorsAddon()
    with taddons.context(addon):
        cycle(addon, make_flow("GET", API + "/first", {"Origin": APP}, 200, {"Access-Control-Allow-Origin": APP}, 1.0))
        odd = make_flow("GET", API + "/odd", {"Origin": APP}, 200, {}, 2.0)
        odd.error = type("Error", (), {"msg": object(), "timestamp": 2.5})()  # not marshallable
        addon.request(odd)
        addon.response(odd)
        later = make_flow("GET", API + "/later", {"Origin": APP, "Sec-Fetch-Mode": "cors"}, 200, {}, 3.0)
        cycle(addon, later)
        assert type(addon.backend) is HelperBackend and later.marked == ":no_entry:"
    failures = [r for r in caplog.records if "CORS analysis failed for" in r.getMessage()]
    assert len(failures) == 1 and API + "/odd" in failures[0].getMessage()


@pytest.mark.parametrize("fmt", ["table", "markdown", "html", "json"])
def test_every_format_says_when_a_report_is_incomplete_and_only_then(fmt):
    from cors_addon.audit import analyze
    from cors_addon.engines import get_engine
    from cors_addon.writers import render

    report = analyze([], get_engine("chromium"))
    assert "ncomplete" not in render([("live capture", report)], fmt, [[]])
    report.incomplete = "its analysis could not be recovered <here>"
    text = render([("live capture", report)], fmt, [[]])
    assert "its analysis could not be recovered" in text and "<here>" not in (text if fmt == "html" else "")


def test_the_journal_stays_bounded_when_the_event_loop_never_runs_readers(monkeypatch, caplog):
    """A replay (``mitmdump -nr``) feeds the hooks without letting the event loop run
    its readers: the proxy must still hear the helper's checkpoints and forget what
    they cover, or it keeps the whole session in memory."""
    import asyncio
    import time

    from mitmproxy import io

    monkeypatch.setattr(wire, "CHECKPOINT_BYTES", 64 << 10)
    with open(ROOT / "recordings" / "lab-chromium" / "flows.mitm", "rb") as fh:
        flows = [f for f in io.FlowReader(fh).stream() if isinstance(f, http.HTTPFlow)]

    async def replay():
        addon = CorsAddon()
        with taddons.context(addon):
            for round_ in range(6):
                for f in flows:
                    f.id = f"{round_}-{f.id.split('-', 1)[-1]}"
                    addon.request(f)
                    addon.response(f)
                time.sleep(0.3)  # the helper catches up; the loop still runs nothing
            journal = addon.backend.helper.journal
            sent = journal.start + len(journal.frames)
            logged = sum(r.getMessage().startswith("BLOCKED") for r in caplog.records)
            return journal.start, sent, journal.size, len(addon.backend._logged), logged

    caplog.set_level("INFO")
    forgotten, sent, held, remembered, logged = asyncio.run(replay())
    assert 0 < forgotten <= sent, (forgotten, sent, held)
    assert 0 < remembered < logged  # the backend remembers the BLOCKED lines since the last checkpoint only
