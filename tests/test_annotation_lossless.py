"""``--annotate`` is lossless: removing ``_cors``/``_corsSummary`` from the annotated
HAR gives back the input exactly, as JSON (values, numbers, unicode, key order), for
every HAR recording in ``recordings/`` and every bad-but-parseable corpus input.

The expected value is decoded here independently of the loader (gzip/zlib, BOMs,
UTF-16, undecodable bytes kept with ``surrogateescape``), so a reader that dropped or
changed something would not be compared with its own output.
"""

from __future__ import annotations

import codecs
import contextlib
import gzip
import io
import json
import zlib

import pytest

from cors_addon.cli import main
from tests.bad_inputs.make_corpus import CASES, CORPUS
from tests.conftest import ROOT

RECORDINGS = sorted(p for p in (ROOT / "recordings").rglob("*.har"))
ODD = [CORPUS / c.name for c in CASES if c.exit == 0]


def decode_independently(raw: bytes) -> object:
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    elif raw[:1] == b"\x78":
        raw = zlib.decompress(raw)
    for bom, codec in ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if raw.startswith(bom):
            return json.loads(raw[len(bom):].decode(codec))
    if len(raw) > 1 and raw[0] and not raw[1]:
        return json.loads(raw.decode("utf-16-le"))
    return json.loads(raw.removeprefix(codecs.BOM_UTF8).decode("utf-8", "surrogateescape"))


def strip_annotations(har: dict) -> dict:
    har["log"].pop("_corsSummary")
    for entry in har["log"]["entries"]:
        if isinstance(entry, dict):
            entry.pop("_cors", None)
    return har


def same_json(a, b) -> bool:
    """Equal as JSON, key order included; NaN equals NaN here (it is the same token)."""
    dump = lambda v: json.dumps(v, ensure_ascii=True, allow_nan=True)  # noqa: E731
    return dump(a) == dump(b)


@pytest.mark.parametrize("path", RECORDINGS + ODD, ids=lambda p: str(p.relative_to(ROOT)))
def test_removing_the_annotations_gives_back_the_input(path, tmp_path):
    out = tmp_path / "annotated.har"
    with contextlib.redirect_stderr(io.StringIO()):
        assert main([str(path), "--annotate", str(out), "--format", "json", "-o", str(tmp_path / "r.json")]) == 0
    raw_out = out.read_bytes()
    annotated = json.loads(raw_out.decode("utf-8", "surrogateescape"))
    original = decode_independently(path.read_bytes())
    entries = original["log"]["entries"]
    cors = [e for e in annotated["log"]["entries"] if isinstance(e, dict) and "_cors" in e]
    readable = len([e for e in entries if isinstance(e, dict)])
    assert "_corsSummary" in annotated["log"]
    assert len(cors) <= readable
    assert same_json(strip_annotations(annotated), original)


def test_undecodable_bytes_come_back_byte_for_byte(tmp_path):
    path = CORPUS / "latin1-bytes.har"
    out = tmp_path / "a.har"
    with contextlib.redirect_stderr(io.StringIO()):
        assert main([str(path), "--annotate", str(out), "-o", str(tmp_path / "r.txt")]) == 0
    assert b"caf\xe9 \xff\xfe" in out.read_bytes()


def test_lone_surrogate_escapes_come_back_as_escapes(tmp_path):
    out = tmp_path / "a.har"
    assert main([str(CORPUS / "lone-surrogate-escapes.har"), "--annotate", str(out), "-o", str(tmp_path / "r.txt")]) == 0
    raw = out.read_bytes()
    raw.decode("utf-8")  # valid UTF-8: the surrogates are written as JSON escapes
    assert b"\\ud800 and \\udfff" in raw


def test_numbers_and_unicode_survive_as_written(tmp_path):
    src = tmp_path / "n.har"
    src.write_text(
        '{"log": {"version": "1.2", "_n": [0, -0.0, 1.5, 1e-7, 12345678901234567890123, 2.5e+300, 0.1],'
        ' "_u": "ü😀\\u2028\\u0000", "entries": [{"startedDateTime": "2024-05-01T10:00:00Z", "time": 1.25,'
        ' "request": {"method": "GET", "url": "http://a.test/ü", "headers": [], "zz": 1, "aa": 2},'
        ' "response": {"status": 200, "headers": []}, "z_last": true, "a_first": null}]}}', encoding="utf-8")
    out = tmp_path / "a.har"
    assert main([str(src), "--annotate", str(out), "-o", str(tmp_path / "r.txt")]) == 0
    annotated = json.loads(out.read_text(encoding="utf-8"))
    assert annotated["log"]["_n"] == [0, -0.0, 1.5, 1e-7, 12345678901234567890123, 2.5e+300, 0.1]
    assert isinstance(annotated["log"]["_n"][0], int) and str(annotated["log"]["_n"][1]) == "-0.0"
    assert annotated["log"]["_u"] == "ü😀\u2028\u0000"
    entry = annotated["log"]["entries"][0]
    assert list(entry) == ["startedDateTime", "time", "request", "response", "z_last", "a_first", "_cors"]
    assert list(entry["request"]) == ["method", "url", "headers", "zz", "aa"]
