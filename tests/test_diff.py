"""``cors-audit diff``: two real Chromium recordings of one app, before and after the
API added Access-Control-Max-Age: 600 (scripts/lab/record_maxage.py)."""

import json

import pytest

from cors_addon.cli import main
from cors_addon.diff import match_pages
from cors_addon.pages import PageTally
from tests.conftest import ROOT

BEFORE = str(ROOT / "recordings/maxage-before/flows.har")
AFTER = str(ROOT / "recordings/maxage-after/flows.har")
METRICS = ("preflights", "redundant_preflights", "blocked", "preflight_time_ms", "avoidable_time_ms")


def run_json(capsys, *argv) -> dict:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def reports(capsys):
    return (run_json(capsys, BEFORE, "--format", "json", "--what-if-max-age", "600"),
            run_json(capsys, AFTER, "--format", "json"))


def test_diff_numbers_are_the_two_reports(reports, capsys):
    before, after = reports
    doc = run_json(capsys, "diff", BEFORE, AFTER, "--format", "json")
    assert doc["schema"] == "cors-audit-diff/1"
    for key in METRICS:
        s = doc["summary"][key]
        assert (s["before"], s["after"]) == (before["summary"][key], after["summary"][key])
        assert s["change"] == pytest.approx(s["after"] - s["before"], abs=0.05)
    assert [p["url"] for p in doc["pages"]] == [p["url"] for p in before["pages"]] == [p["url"] for p in after["pages"]]
    for page, pb, pa in zip(doc["pages"], before["pages"], after["pages"]):
        assert page["before"] == {"id": pb["id"], **{k: pb[k] for k in METRICS}}
        assert page["after"] == {"id": pa["id"], **{k: pa[k] for k in METRICS}}


def test_diff_shows_the_max_age_fix_worked(reports, capsys):
    before, _ = reports
    doc = run_json(capsys, "diff", BEFORE, AFTER, "--format", "json")
    s = doc["summary"]
    assert s["preflights"]["change"] < 0 and s["redundant_preflights"]["after"] == 0
    assert s["avoidable_time_ms"]["after"] == 0 and s["preflight_time_ms"]["change"] < 0
    assert doc["max_age"]["before"] == {o: ["(none)"] for o in doc["max_age"]["after"]}
    assert set(map(tuple, doc["max_age"]["after"].values())) == {("600",)}
    predicted = before["summary"]["what_if"]["max_age_600"]
    assert doc["predicted"] == {"max_age": 600, **predicted}
    assert predicted["preflights_saved"] == -s["preflights"]["change"]
    assert {f["id"]: f["after"] for f in doc["findings"]}["redundant-no-max-age"] == 0


def test_table_and_markdown_carry_the_same_numbers(capsys):
    doc = run_json(capsys, "diff", BEFORE, AFTER, "--format", "json")
    p = doc["summary"]["preflights"]
    line = f"preflights {p['before']} → {p['after']} ({p['change']})"
    assert main(["diff", BEFORE, AFTER]) == 0
    table = capsys.readouterr().out
    assert line in table and "redundant-no-max-age" in table
    assert main(["diff", BEFORE, AFTER, "--format", "markdown"]) == 0
    markdown = capsys.readouterr().out
    assert line in markdown and "| page | preflights |" in markdown
    for page in doc["pages"]:
        cell = f"{page['before']['preflights']} → {page['after']['preflights']}"
        assert cell in table and cell in markdown


def test_pages_are_matched_by_url_in_order():
    before = [PageTally("b1", "https://app/a"), PageTally("b2", "https://app/b"), PageTally("b3", "https://app/a")]
    after = [PageTally("a1", "https://app/a"), PageTally("a2", "https://app/a"), PageTally("a3", "https://app/c")]
    pairs = [(url, n, b and b.id, a and a.id) for url, n, b, a in match_pages(before, after)]
    assert pairs == [("https://app/a", 0, "b1", "a1"), ("https://app/a", 1, "b3", "a2"),
                     ("https://app/b", 0, "b2", None), ("https://app/c", 0, None, "a3")]


def test_diff_errors_and_output_file(tmp_path, capsys):
    assert main(["diff", BEFORE, str(tmp_path / "missing.har")]) == 3
    assert "missing.har" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["diff", BEFORE])
    assert exc.value.code == 2
    out = tmp_path / "d.md"
    assert main(["diff", BEFORE, AFTER, "-o", str(out)]) == 0
    assert out.read_text().startswith("### CORS audit diff")
    assert main([BEFORE, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["schema"] == "cors-audit/1"


def _har(max_age: str) -> dict:
    def entry(method, headers, status, response, second):
        return {"pageref": "p", "startedDateTime": f"2024-05-01T10:00:0{second}.000Z", "time": 20,
                "request": {"method": method, "url": "http://api.test/x?access_token=URLTOKEN123456",
                            "httpVersion": "HTTP/1.1", "headers": [{"name": k, "value": v} for k, v in headers]},
                "response": {"status": status, "headers": [{"name": k, "value": v} for k, v in response]},
                "timings": {"send": 1, "wait": 18, "receive": 1}}

    cors = [("Origin", "http://app.test"), ("Sec-Fetch-Mode", "cors")]
    return {"log": {"version": "1.2", "creator": {"name": "t", "version": "1"},
                    "pages": [{"id": "p", "title": "http://app.test/cb?code=OAUTHCODE123456",
                               "startedDateTime": "2024-05-01T10:00:00.000Z"}],
                    "entries": [
        entry("OPTIONS", cors + [("Access-Control-Request-Method", "PUT")], 204,
              [("Access-Control-Allow-Origin", "http://app.test"), ("Access-Control-Allow-Methods", "PUT"),
               ("Access-Control-Max-Age", max_age)], 0),
        entry("PUT", cors, 200, [("Access-Control-Allow-Origin", "http://app.test")], 0),
    ]}}


@pytest.mark.parametrize("fmt", ["table", "json", "markdown"])
def test_diff_shows_no_secrets(fmt, tmp_path, capsys):
    before, after = tmp_path / "b.har", tmp_path / "a.har"
    before.write_text(json.dumps(_har("Bearer MAXAGESECRET123")))
    after.write_text(json.dumps(_har("600")))
    assert main(["diff", str(before), str(after), "--format", fmt]) == 0
    out = capsys.readouterr().out
    assert "600" in out
    for secret in ("URLTOKEN123456", "OAUTHCODE123456", "MAXAGESECRET123"):
        assert secret not in out
    assert main(["diff", str(before), str(after), "--format", fmt, "--show-secrets"]) == 0
    assert "OAUTHCODE123456" in capsys.readouterr().out
