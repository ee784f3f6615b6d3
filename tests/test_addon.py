"""The mitmproxy addon, with mitmproxy's own test helpers and a real mitmdump."""

import json
import pathlib
import subprocess
import sys

import pytest
from mitmproxy import exceptions, http
from mitmproxy.test import taddons, tflow

from cors_addon.addon import CorsAddon

ROOT = pathlib.Path(__file__).resolve().parent.parent
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


def test_options_are_validated():
    addon = CorsAddon()
    with taddons.context(addon) as tctx:
        with pytest.raises(exceptions.OptionsError):
            tctx.configure(addon, cors_browser="opera")
        with pytest.raises(exceptions.OptionsError):
            tctx.configure(addon, cors_annotate="out.json")
        tctx.configure(addon, cors_browser="firefox")
        assert addon.analyzer.engine.name == "firefox"


def test_blocked_preflight_is_logged_marked_and_commented(caplog):
    addon = CorsAddon()
    with taddons.context(addon):
        pf = make_flow("OPTIONS", API + "/items/1", {"Origin": APP, "Access-Control-Request-Method": "PUT",
                                                     "Sec-Fetch-Mode": "cors"}, 404, {}, 100.0)
        caplog.set_level("INFO")
        cycle(addon, pf)
        line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("BLOCKED"))
        assert line.startswith(f"BLOCKED PUT {API}/items/1 from {APP}: PreflightMissingAllowOriginHeader — ")
        assert "No 'Access-Control-Allow-Origin' header" in line and "Fix: Access-Control-Allow-Origin: http://app.test" in line
        assert pf.marked == ":no_entry:" and "PreflightMissingAllowOriginHeader" in pf.comment
        assert pf.metadata["cors"]["verdict"] == "blocked"


def test_redundant_preflight_is_marked():
    addon = CorsAddon()
    with taddons.context(addon):
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


def test_a_failing_flow_never_raises_into_mitmproxy(caplog):
    addon = CorsAddon()
    with taddons.context(addon):
        f = make_flow("GET", API + "/x", {"Origin": APP}, 200, {}, 1.0)
        addon.analyzer.add = None  # any exception inside the engine
        addon.response(f)
        addon.response(f)
        assert sum("CORS analysis failed" in r.getMessage() for r in caplog.records) == 2
        assert sum(r.exc_info is not None for r in caplog.records) == 1  # traceback logged once


def test_summary_command_over_flows():
    addon = CorsAddon()
    with taddons.context(addon):
        pf = make_flow("OPTIONS", API + "/x", {"Origin": APP, "Access-Control-Request-Method": "PUT"}, 404, {}, 1.0)
        text = addon.summary([pf])
        assert "PreflightMissingAllowOriginHeader" in text and "Totals:" in text


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


def test_log_lines_and_comments_hide_secrets_unless_asked(caplog):
    addon = CorsAddon()
    with taddons.context(addon) as tctx:
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
