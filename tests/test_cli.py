"""The cors-audit command line: formats, exit codes, annotation, bad input."""

import gzip
import json
import subprocess
import sys
import zlib

import pytest

from cors_addon.cli import main

OAUTH = "chrome-localhost-oauth-discovery-failing-preflights.har"
LISTONIC = "chrome138-listonic-repeated-preflights.har"


def test_json_report_schema(wild, capsys):
    assert main([wild(OAUTH), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "cors-audit/1"
    page = doc["pages"][0]
    for key in ("id", "url", "requests", "preflights", "redundant_preflights", "blocked", "preflight_time_ms", "avoidable_time_ms"):
        assert key in page
    flow = next(f for f in doc["flows"] if f["kind"] == "preflight")
    for key in ("id", "page", "method", "url", "origin", "status", "kind", "requested", "pair", "verdict",
                "cors_error", "failed_parameter", "redundant", "cause"):
        assert key in flow
    assert {f["verdict"] for f in doc["flows"]} <= {"ok", "blocked", "unknown"}
    finding = doc["findings"][0]
    assert set(("id", "severity", "flows", "message", "fix")) <= set(finding)


def test_fail_on_sets_the_exit_code(wild, capsys):
    assert main([wild(LISTONIC), "--fail-on", "blocked"]) == 0
    assert main([wild(LISTONIC), "--fail-on", "redundant"]) == 1
    assert main([wild(OAUTH), "--fail-on", "PreflightMissingAllowOriginHeader"]) == 1


def test_markdown_and_output_suffix(wild, tmp_path):
    out = tmp_path / "r.md"
    assert main([wild(LISTONIC), "--output", str(out)]) == 0
    assert out.read_text().startswith("### CORS audit")


def test_annotated_har_keeps_every_original_field(wild, tmp_path):
    out = tmp_path / "a.har"
    assert main([wild(OAUTH), "--annotate", str(out), "--format", "json", "-o", str(tmp_path / "r.json")]) == 0
    annotated = json.loads(out.read_text(encoding="utf-8"))
    original = json.load(open(wild(OAUTH), encoding="utf-8-sig"))
    assert "_corsSummary" in annotated["log"]
    assert all("_cors" in e for e in annotated["log"]["entries"])
    del annotated["log"]["_corsSummary"]
    for e in annotated["log"]["entries"]:
        del e["_cors"]
    assert annotated == original
    assert json.dumps(annotated) == json.dumps(original)  # key order too


def test_compressed_inputs(wild, tmp_path):
    raw = open(wild(LISTONIC), "rb").read()
    (tmp_path / "x.har.gz").write_bytes(gzip.compress(raw))
    (tmp_path / "x.zhar").write_bytes(zlib.compress(raw))
    assert main([str(tmp_path / "x.har.gz"), str(tmp_path / "x.zhar"), "--format", "json", "-o", str(tmp_path / "o.json")]) == 0
    doc = json.loads((tmp_path / "o.json").read_text())
    assert doc["summary"]["recordings"] == 2 and doc["summary"]["preflights"] == 8


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"),
    (b'{"log": {"entries": [', "is truncated"),
    (b"{'log': {}}", "Python repr"),
    (b'{"foo": 1}', 'no top-level "log"'),
    (b"version https://git-lfs.github.com/spec/v1\n", "Git LFS pointer"),
    (b"<html></html>", "HTML or XML"),
])
def test_bad_input_is_one_clear_line(tmp_path, capsys, content, message):
    path = tmp_path / "bad.har"
    path.write_bytes(content)
    assert main([str(path)]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0] and message in err[0]


def test_missing_file_and_directory(tmp_path, capsys):
    assert main([str(tmp_path / "nope.har")]) == 3
    assert "no such file" in capsys.readouterr().err
    assert main([str(tmp_path)]) == 3
    assert "no recordings" in capsys.readouterr().err


def test_console_script_runs_as_module(wild):
    proc = subprocess.run([sys.executable, "-m", "cors_addon", wild(LISTONIC)], capture_output=True, text=True)
    assert proc.returncode == 0 and "Totals:" in proc.stdout
