"""Every bad or odd input ends in an analysis or one clear line, never a traceback.

The corpus is ``tests/bad_inputs/corpus/`` (written by ``make_corpus.py``, whose
``CASES`` table says what each file must produce). Each case runs the real CLI in a
subprocess; they run concurrently up front, and each case asserts on its own result.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pathlib
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.bad_inputs.make_corpus import CASES, CORPUS, SPECIAL, Case, write
from tests.conftest import ROOT

ALL = CASES + SPECIAL


def _mitm_flows(n: int) -> bytes:
    from mitmproxy import http, io as mio
    from mitmproxy.test import tflow

    buf = io.BytesIO()
    writer = mio.FlowWriter(buf)
    for i in range(n):
        f = tflow.tflow(req=http.Request.make("GET", f"http://api.test/{i}", b"", {"Origin": "http://app.test"}))
        f.response = http.Response.make(200, b"", {"Access-Control-Allow-Origin": "http://app.test"})
        writer.add(f)
    return buf.getvalue()


def _unprivileged() -> list[str] | None:
    """How to run the CLI so that mode 000 means unreadable: as is for a normal user;
    as root, without the capabilities that let root read anything."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        return None
    probe = subprocess.run(["setpriv", "--bounding-set=-dac_override,-dac_read_search",
                            "--inh-caps=-dac_override,-dac_read_search", "true"], capture_output=True)
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
            "--inh-caps=-dac_override,-dac_read_search"] if probe.returncode == 0 else None


def _prepare(case: Case, where: pathlib.Path) -> tuple[str, list[str] | None, str]:
    """The path to give the CLI, a command prefix (None: cannot run here), and why not."""
    if case.data is not None:
        return str(CORPUS / case.name), [], ""
    name = case.name
    if name == "a-directory-of-recordings/":
        d = where / "recordings"
        d.mkdir()
        shutil.copy(CORPUS / "good.har", d / "one.har")
        shutil.copy(CORPUS / "gzipped.har.gz", d / "two.har.gz")
        (d / "notes.txt").write_text("not a recording, not picked up")
        return str(d), [], ""
    if name == "an-empty-directory/":
        (where / "empty").mkdir()
        return str(where / "empty"), [], ""
    if name == "missing.har":
        return str(where / "missing.har"), [], ""
    if name == "not-a-directory.har/inner.har":
        shutil.copy(CORPUS / "good.har", where / "not-a-directory.har")
        return str(where / "not-a-directory.har" / "inner.har"), [], ""
    if name == "unreadable.har":
        path = where / "unreadable.har"
        shutil.copy(CORPUS / "good.har", path)
        path.chmod(0)
        prefix = _unprivileged()
        if prefix is None:
            return str(path), None, "running as root without setpriv: mode 000 cannot be made unreadable"
        return str(path), prefix, ""
    if name == "truncated.mitm":
        data = _mitm_flows(1)
        (where / name).write_bytes(data[: len(data) // 2])
        return str(where / name), [], ""
    if name == "good-then-truncated.mitm":
        data = _mitm_flows(3)
        one = len(_mitm_flows(1))
        (where / name).write_bytes(data[: 2 * one + one // 2])
        return str(where / name), [], ""
    raise AssertionError(name)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Run the CLI on every case at once: (path, returncode, stdout, stderr) or a skip reason."""
    where = tmp_path_factory.mktemp("bad_inputs")
    jobs = {}
    for case in ALL:
        path, prefix, why = _prepare(case, where)
        jobs[case.name] = (path, prefix, why)

    def run(name):
        path, prefix, why = jobs[name]
        if prefix is None:
            return path, None, "", why
        proc = subprocess.run([*prefix, sys.executable, "-m", "cors_addon", path, "--format", "json"],
                              capture_output=True, text=True, cwd=ROOT, timeout=60,
                              env={**os.environ, "PYTHONIOENCODING": "utf-8"})
        return path, proc.returncode, proc.stdout, proc.stderr

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(jobs, pool.map(run, jobs)))


def test_corpus_is_what_the_generator_writes(tmp_path):
    """The committed files are reproducible: make_corpus.py writes these same bytes."""
    fresh = write(tmp_path)
    assert sorted(p.name for p in fresh) == sorted(p.name for p in CORPUS.iterdir() if p.is_file())
    for path in fresh:
        assert path.read_bytes() == (CORPUS / path.name).read_bytes(), f"{path.name}: rerun make_corpus.py"


@pytest.mark.parametrize("case", ALL, ids=[c.name for c in ALL])
def test_cli_on_bad_input(case, results):
    path, code, out, err = results[case.name]
    if code is None:
        pytest.skip(err)
    assert "Traceback" not in err and "Traceback" not in out
    assert code == case.exit, f"exit {code}, expected {case.exit}; stderr: {err}"
    lines = err.strip().splitlines()
    if case.exit == 3:
        assert len(lines) == 1, err
        assert lines[0].startswith(f"cors-audit: {path}: "), lines[0]
        assert case.expect in lines[0]
        assert out == ""
        return
    for line in lines:
        assert line.startswith("cors-audit: " + path.rstrip("/")), line
    if case.expect:
        assert case.expect in err
    elif "mitm" not in case.name:
        assert err == "", f"unexpected warnings: {err}"
    doc = json.loads(out)
    assert doc["schema"] == "cors-audit/1"
    if case.exchanges is not None:
        assert doc["summary"]["exchanges"] == case.exchanges


ANALYSABLE = [c for c in CASES if c.exit == 0]


@pytest.mark.parametrize("case", ANALYSABLE, ids=[c.name for c in ANALYSABLE])
def test_every_format_and_annotation_renders(case, tmp_path):
    """In process, so that a writer failing on odd data shows up here, with the case."""
    from cors_addon.cli import main
    from cors_addon.writers import FORMATS

    for fmt in FORMATS:
        err = io.StringIO()
        args = [str(CORPUS / case.name), "--format", fmt, "-o", str(tmp_path / f"r.{fmt}")]
        if fmt == "json":
            args += ["--annotate", str(tmp_path / "a.har")]
        with contextlib.redirect_stderr(err):
            assert main(args) == 0, err.getvalue()
        assert (tmp_path / f"r.{fmt}").stat().st_size > 0
    annotated = json.loads((tmp_path / "a.har").read_bytes().decode("utf-8", "surrogateescape"))
    assert "_corsSummary" in annotated["log"]


def test_one_bad_file_does_not_stop_the_others(tmp_path, capsys):
    from cors_addon.cli import main

    code = main([str(CORPUS / "truncated-mid-entry.har"), str(CORPUS / "good.har"),
                 str(CORPUS / "json-array.har"), "--format", "json"])
    captured = capsys.readouterr()
    assert code == 3
    assert json.loads(captured.out)["summary"]["exchanges"] == 3
    assert len(captured.err.strip().splitlines()) == 2


def test_internal_error_is_one_line_with_exit_70(tmp_path, monkeypatch):
    """A bug in the engine still ends in one line and the documented code."""
    script = ("import cors_addon.batch as b, cors_addon.cli as c\n"
              "def boom(*a, **k): raise RuntimeError('injected\\nfailure')\n"
              "b.analyze = boom\n"
              "c.run()\n")
    proc = subprocess.run([sys.executable, "-c", script, str(CORPUS / "good.har"), str(CORPUS / "bom.har")],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 70
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2 and all("internal error while analysing (RuntimeError: injected failure)" in ln
                                   for ln in lines)
    script = "import cors_addon.cli as c\nc.main = lambda: 1 / 0\nc.run()\n"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 70 and proc.stderr.count("\n") == 1 and "ZeroDivisionError" in proc.stderr


def test_mitm_flow_with_a_non_utf8_header_byte(tmp_path):
    from mitmproxy import http, io as mio
    from mitmproxy.test import tflow

    f = tflow.tflow(req=http.Request.make("GET", "http://api.test/x", b"",
                                          [(b"Origin", b"http://app.test"), (b"Content-Type", b"caf\xe9")]))
    f.response = http.Response.make(200, b"", {"Access-Control-Allow-Origin": "http://app.test"})
    path = tmp_path / "latin1-header.mitm"
    with open(path, "wb") as fh:
        mio.FlowWriter(fh).add(f)
    proc = subprocess.run([sys.executable, "-m", "cors_addon", str(path), "--format", "json"],
                          capture_output=True, text=True, cwd=ROOT)
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 0, proc.stderr


GOOD_VERDICTS = [("OPTIONS", "preflight", "ok", None), ("PUT", "preflighted", "ok", None),
                 ("GET", "simple", "blocked", "MissingAllowOriginHeader")]
SAME_AS_GOOD = [
    "bom.har", "gzipped.har.gz", "gzipped-named-plain.har", "zlib.zhar", "gzipped-bom.har.gz", "utf16-le-bom.har",
    "utf16-be-bom.har", "utf16-le-no-bom.har", "latin1-bytes.har", "nan-infinity.har",
    "http2-pseudo-headers.har", "extra-unknown-fields.har", "creator-is-string.har",
    "many-headers.har", "control-chars-in-values.har", "weird-max-age.har", "header-value-number.har",
    "header-value-null.har", "header-value-object.har", "header-name-number.har", "header-name-empty.har",
    "status-is-string.har", "status-is-float.har", "timings-strings.har", "timings-is-list.har",
    "timings-all-minus-one.har", "timings-negative.har", "time-is-string.har", "started-seven-digits.har",
    "page-fields-wrong.har", "page-id-number.har", "pages-items-wrong.har", "pages-is-object.har",
    "duplicate-page-ids.har", "initiator-and-cache-odd.har", "mixed-good-and-bad-entries.har", "method-lowercase.har",
]
"""Oddities that must not change a single verdict of the good HAR they were made from."""
UNFOLLOWED = ("OPTIONS", "preflight", "blocked", "PreflightInvalidAllowCredentials")
SPECIFIC = {
    "duplicate-odd-case-headers.har": GOOD_VERDICTS[:2] + [("GET", "simple", "blocked", "MultipleAllowOriginValues")],
    "header-item-pair-lists.har": GOOD_VERDICTS[:2] + [("GET", "simple", "ok", None)],
    "status0-with-error.har": [("OPTIONS", "preflight", "blocked", None), ("PUT", "preflighted", "blocked", None),
                               GOOD_VERDICTS[2]],
    "response-missing.har": GOOD_VERDICTS[:2] + [("GET", "simple", "unknown", None)],
    "response-is-null.har": GOOD_VERDICTS[:2] + [("GET", "simple", "unknown", None)],
    "response-is-string.har": GOOD_VERDICTS[:2] + [("GET", "simple", "unknown", None)],
    "status0-no-error.har": GOOD_VERDICTS[:2] + [("GET", "simple", "unknown", None)],
    "error-is-object.har": GOOD_VERDICTS[:2] + [("GET", "simple", "unknown", None)],
    # a custom header on the GET: it needed a preflight, which the recording does not hold
    "lone-surrogate-escapes.har": GOOD_VERDICTS[:2] + [("GET", "preflighted", "blocked", "MissingAllowOriginHeader")],
    "unicode-everywhere.har": GOOD_VERDICTS[:2] + [("GET", "preflighted", "blocked", "MissingAllowOriginHeader")],
    # the PUT skipped: its preflight passes only without credentials and nothing followed
    "entry-is-null.har": [UNFOLLOWED, GOOD_VERDICTS[2]],
    "url-bad-ipv6.har": [UNFOLLOWED, GOOD_VERDICTS[2]],
    "preflight-url-bad-ipv6.har": [("PUT", "preflighted", "ok", None), GOOD_VERDICTS[2]],
}


@pytest.mark.parametrize("name", SAME_AS_GOOD + sorted(SPECIFIC))
def test_the_analysis_is_right(name, results):
    """Read is not enough: what was readable is analysed as the browser would."""
    _, code, out, _ = results[name]
    assert code == 0
    doc = json.loads(out)
    verdicts = [(f["method"].upper(), f["kind"], f["verdict"], f["cors_error"]) for f in doc["flows"]]
    assert verdicts == SPECIFIC.get(name, GOOD_VERDICTS)
    if name == "header-value-number.har":
        assert doc["flows"][0]["max_age"]["seconds"] == 600
