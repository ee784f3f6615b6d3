"""Real exports from Chrome, Firefox and BrowserMob (recordings/wild, see SOURCES.md):
the facts each file is known for must come out of the analysis."""

import collections

from cors_addon.audit import analyze
from cors_addon.engines import CHROMIUM
from cors_addon.sources.load import load_recording


def audit(path):
    rec = load_recording(path)
    return analyze(rec.exchanges, CHROMIUM, pages=rec.pages)


def finding_counts(report):
    return {f["id"]: f["count"] for f in report.findings}


def test_listonic_repeats_are_devtools_cache_bypass(wild):
    report = audit(wild("chrome138-listonic-repeated-preflights.har"))
    assert report.summary["preflights"] == 4
    redundant = [f for f in report.flows if f.redundant]
    assert len(redundant) == 2 and {f.cause for f in redundant} == {"cache-bypassed"}
    assert all("listonic" in f.url and f.requested["method"] == "PATCH" for f in redundant)


def test_oauth_failing_preflights_carry_chromium_reasons(wild):
    report = audit(wild("chrome-localhost-oauth-discovery-failing-preflights.har"))
    preflights = [f for f in report.flows if f.kind == "preflight"]
    assert len(preflights) == 9
    reasons = collections.Counter(f.cors_error for f in preflights if f.verdict == "blocked")
    assert reasons == {"PreflightMissingAllowOriginHeader": 6, "HeaderDisallowedByPreflightResponse": 2}
    header = [f for f in preflights if f.cors_error == "HeaderDisallowedByPreflightResponse"]
    assert {f.failed_parameter for f in header} == {"mcp-protocol-version"}
    # every blocked preflight is paired with Chrome's status-0 entry of the request it stopped
    for f in preflights:
        if f.verdict == "blocked":
            partner = next(x for x in report.flows if x.id == f.pair)
            assert partner.status == 0 and partner.never_sent and partner.cors_error == f.cors_error


def test_offline_preflights_are_network_errors(wild):
    report = audit(wild("chrome-google-offline-failed-preflights.har"))
    assert finding_counts(report).get("preflight-network-error") == 4
    assert len(report.pages) == 2


def test_supabase_parallel_pairs_are_not_redundant(wild):
    report = audit(wild("chrome-localhost-supabase-repeated-preflights.har"))
    assert report.summary["preflights"] == 12 and report.summary["redundant_preflights"] == 0
    assert finding_counts(report)["parallel-preflights"] == 6
    assert all(f.pair for f in report.flows if f.kind == "preflight")


def test_firefox_har_pairs_without_chrome_hints(wild):
    report = audit(wild("firefox79-nike-checkout-preflights.har"))
    assert [(f.kind, f.pair is not None, f.verdict) for f in report.flows] == [("preflight", True, "ok"), ("preflighted", True, "ok")] * 2


def test_preflight_only_export_is_not_called_blocked(wild):
    """Chrome's filtered export holds preflights only: no follow-up is not evidence."""
    report = audit(wild("chrome-filtered-preflights-only.har"))
    assert report.summary["preflights"] == 66 and report.summary["blocked"] == 0
    assert {f.cause for f in report.flows if f.redundant} == {"cache-bypassed"}


def test_every_wild_recording_pairs_each_preflight_at_most_once(wild):
    import glob
    import os

    for path in glob.glob(os.path.join(os.path.dirname(wild("x")), "*.har")):
        report = audit(path)
        pairs = [f.pair for f in report.flows if f.kind == "preflight" and f.pair]
        assert len(pairs) == len(set(pairs)), path
        s = report.summary
        assert s["redundant_preflights"] <= s["preflights"]
        assert sum(p.requests for p in report.pages) == s["exchanges"]
