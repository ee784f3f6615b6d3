"""Generate the bad-and-odd input corpus for ``cors-audit``.

    python tests/bad_inputs/make_corpus.py          # (re)write tests/bad_inputs/corpus/
    python tests/bad_inputs/make_corpus.py --table  # the case table, as Markdown

Every case is a few lines built from one small, good HAR (a page, a passing
preflight + PUT pair, and a GET the server forgot to allow) with one thing broken or
odd. ``CASES`` says what the CLI must do with each: exit 0 with an analysis (and the
warning it prints, if any), or exit 3 with one line naming the file and the problem.
``tests/test_bad_inputs.py`` runs the CLI on every case; the committed files are
these bytes, so a failing case can be rerun by hand.
"""

from __future__ import annotations

import copy
import gzip
import json
import pathlib
import sys
import zlib
from dataclasses import dataclass

HERE = pathlib.Path(__file__).resolve().parent
CORPUS = HERE / "corpus"

APP, API = "http://app.test", "http://api.test"
T0 = "2024-05-01T10:00:00.000Z"


def _headers(pairs):
    return [{"name": k, "value": v} for k, v in pairs]


def entry(method, url, req, status, resp, started, time=12.5, **extra):
    e = {
        "pageref": "page_1",
        "startedDateTime": started,
        "time": time,
        "request": {
            "method": method, "url": url, "httpVersion": "HTTP/1.1",
            "headers": _headers(req), "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 0,
        },
        "response": {
            "status": status, "statusText": "OK" if status else "", "httpVersion": "HTTP/1.1",
            "headers": _headers(resp), "cookies": [], "content": {"size": 0, "mimeType": ""},
            "redirectURL": "", "headersSize": -1, "bodySize": 0,
        },
        "cache": {},
        "timings": {"blocked": -1, "dns": -1, "connect": -1, "ssl": -1, "send": 0.1, "wait": 12.0, "receive": 0.4},
    }
    e.update(extra)
    return e


def good_har() -> dict:
    cors = [("Origin", APP), ("Sec-Fetch-Mode", "cors"), ("Referer", APP + "/")]
    return {
        "log": {
            "version": "1.2",
            "creator": {"name": "WebInspector", "version": "537.36"},
            "pages": [{"startedDateTime": "2024-05-01T09:59:59.000Z", "id": "page_1", "title": APP + "/",
                       "pageTimings": {"onContentLoad": 120.5, "onLoad": 240.25}}],
            "entries": [
                entry("OPTIONS", API + "/items/1", cors + [("Access-Control-Request-Method", "PUT")], 204,
                      [("Access-Control-Allow-Origin", APP), ("Access-Control-Allow-Methods", "PUT")],
                      "2024-05-01T10:00:00.000Z"),
                entry("PUT", API + "/items/1", cors, 200, [("Access-Control-Allow-Origin", APP)],
                      "2024-05-01T10:00:00.020Z"),
                entry("GET", API + "/feed", cors, 200, [("Content-Type", "application/json")],
                      "2024-05-01T10:00:01.000Z"),
            ],
        }
    }


def dumps(data, **kw) -> bytes:
    return json.dumps(data, ensure_ascii=False, **kw).encode("utf-8")


def mutate(fn) -> bytes:
    har = good_har()
    fn(har)
    return dumps(har)


def _e(har, i=1):
    return har["log"]["entries"][i]


def _set(path_fn, value):
    def apply(har):
        target, key = path_fn(har)
        target[key] = value
    return apply


def _del(path_fn):
    def apply(har):
        target, key = path_fn(har)
        del target[key]
    return apply


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes | None
    """None: not a file the generator writes (a directory, a missing path...)."""
    exit: int
    expect: str = ""
    """For exit 3: the problem named on the one error line. For exit 0: a warning
    the CLI must print (empty: no warning expected)."""
    exchanges: int | None = None
    """How many exchanges the analysis must count (exit 0 only)."""
    about: str = ""


def _deep(n: int) -> bytes:
    return b'{"log": {"entries": [' + b"[" * n + b"]" * n + b"]}}"


def _cases() -> list[Case]:
    good = dumps(good_har())
    cases: list[Case] = []

    def ok(name, data, exchanges, expect="", about=""):
        cases.append(Case(name, data, 0, expect, exchanges, about))

    def bad(name, data, expect, about=""):
        cases.append(Case(name, data, 3, expect, None, about))

    # -- not a HAR at all, or cut short --------------------------------------------
    ok("good.har", good, 3, about="the baseline every other case breaks")
    bad("empty.har", b"", "is empty")
    bad("whitespace.har", b" \n\t\r\n", "is empty")
    bad("bom-only.har", b"\xef\xbb\xbf", "is empty")
    bad("truncated-early.har", good[:40], "is truncated")
    bad("truncated-mid-entry.har", good[: len(good) * 2 // 3], "is truncated",
        about="a browser that crashed while saving")
    bad("truncated-last-brace.har", good.rstrip()[:-1], "is truncated")
    bad("trailing-garbage.har", good + b"\n}{\x00garbage", "is not valid JSON")
    bad("two-hars-concatenated.har", good + good, "is not valid JSON")
    bad("python-repr.har", repr(good_har()).encode(), "Python repr")
    bad("html-error-page.har", b"<!doctype html><title>502 Bad Gateway</title>", "HTML or XML")
    bad("git-lfs-pointer.har", b"version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 12\n", "Git LFS pointer")
    bad("plain-text.har", b"this is not a recording\n", "neither HAR")
    bad("binary-noise.har", bytes(range(256)) * 4, "neither HAR")
    bad("json-array.har", b"[]", "not a HAR file")
    bad("json-null.har", b"null", "not a HAR file")
    bad("json-number.har", b"42", "not a HAR file")
    bad("json-string.har", b'"log"', "not a HAR file")
    bad("no-log.har", b'{"foo": 1}', 'no top-level "log"')
    bad("log-is-list.har", b'{"log": []}', 'no top-level "log"')
    bad("log-is-null.har", b'{"log": null}', 'no top-level "log"')
    bad("log-is-string.har", b'{"log": "entries"}', 'no top-level "log"')
    bad("no-entries.har", b'{"log": {"version": "1.2"}}', '"log.entries" is missing')
    bad("entries-is-object.har", b'{"log": {"entries": {"0": {}}}}', '"log.entries" is missing or not a list')
    bad("entries-is-null.har", b'{"log": {"entries": null}}', '"log.entries" is missing or not a list')
    bad("entries-is-string.har", b'{"log": {"entries": "[]"}}', '"log.entries" is missing or not a list')
    bad("deeply-nested.har", _deep(20_000), "nested too deeply")
    bad("huge-integer.har", b'{"log": {"entries": [], "x": ' + b"9" * 5000 + b"}}", "more than 4300 digits")
    bad("utf16-no-bom-garbage.har", "not json".encode("utf-16-le"), "neither HAR")

    # -- compressed --------------------------------------------------------------
    ok("gzipped.har.gz", gzip.compress(good, mtime=0), 3)
    ok("gzipped-named-plain.har", gzip.compress(good, mtime=0), 3, about="sniffed from bytes, not the name")
    ok("zlib.zhar", zlib.compress(good), 3)
    ok("gzipped-bom.har.gz", gzip.compress(b"\xef\xbb\xbf" + good, mtime=0), 3)
    bad("gzip-truncated.har.gz", gzip.compress(good, mtime=0)[:60], "gzip data is damaged")
    bad("gzip-corrupt.har.gz", gzip.compress(good, mtime=0)[:20] + b"\x00" * 40, "gzip data is damaged")
    bad("zlib-truncated.zhar", zlib.compress(good)[:50], "zlib (.zhar) data is damaged")
    bad("gzip-of-empty.har.gz", gzip.compress(b"", mtime=0), "is empty")
    bad("gzip-of-truncated-json.har.gz", gzip.compress(good[:300], mtime=0), "is truncated")

    # -- encodings -----------------------------------------------------------------
    ok("bom.har", b"\xef\xbb\xbf" + good, 3)
    ok("utf16-le-bom.har", "\ufeff".encode("utf-16-le") + good.decode().encode("utf-16-le"), 3,
       about="PowerShell's `>` writes UTF-16")
    ok("utf16-be-bom.har", "\ufeff".encode("utf-16-be") + good.decode().encode("utf-16-be"), 3)
    ok("utf16-le-no-bom.har", good.decode().encode("utf-16-le"), 3)
    ok("latin1-bytes.har", good.replace(b'"Sec-Fetch-Mode"', b'"X-Caf\xe9", "value": "caf\xe9 \xff\xfe"},'
                                        b' {"name": "Sec-Fetch-Mode"', 1), 3,
       "not valid UTF-8", about="non-UTF-8 bytes in a header: kept byte-exact in --annotate")
    ok("lone-surrogate-escapes.har", mutate(lambda h: _e(h, 2)["request"]["headers"].append(
        {"name": "X-Broken", "value": "\\ud800 and \\udfff"})).replace(b"\\\\ud800", b"\\ud800")
        .replace(b"\\\\udfff", b"\\udfff"), 3, about="valid JSON, invalid Unicode")
    ok("nan-infinity.har", mutate(_set(lambda h: (_e(h), "time"), "__NAN__")).replace(b'"__NAN__"', b"NaN")
       .replace(b'"wait": 12.0', b'"wait": Infinity', 1), 3, about="JSON extensions Python accepts")

    # -- wrong types, entry by entry ------------------------------------------------
    ok("empty-entries.har", b'{"log": {"version": "1.2", "entries": []}}', 0, "no entries")
    ok("entries-empty-pages-missing.har", b'{"log": {"entries": [], "pages": null}}', 0, "no entries")
    for name, value in [("number", 7), ("string", "GET /"), ("null", None), ("list", [1, 2])]:
        ok(f"entry-is-{name}.har", mutate(_set(lambda h: (h["log"]["entries"], 1), value)), 2,
           "entry 1: entry is not an object")
    ok("entry-empty-object.har", mutate(_set(lambda h: (h["log"]["entries"], 1), {})), 2, "entry 1: entry has no request")
    ok("request-missing.har", mutate(_del(lambda h: (_e(h), "request"))), 2, "entry 1: entry has no request")
    ok("request-is-string.har", mutate(_set(lambda h: (_e(h), "request"), "PUT /items/1")), 2, "entry 1: entry has no request")
    ok("request-is-list.har", mutate(_set(lambda h: (_e(h), "request"), [])), 2, "entry 1: entry has no request")
    ok("method-missing.har", mutate(_del(lambda h: (_e(h)["request"], "method"))), 2, "entry 1: request has no method or url")
    ok("method-is-number.har", mutate(_set(lambda h: (_e(h)["request"], "method"), 1)), 2, "entry 1: request has no method or url")
    ok("url-is-null.har", mutate(_set(lambda h: (_e(h)["request"], "url"), None)), 2, "entry 1: request has no method or url")
    ok("url-is-object.har", mutate(_set(lambda h: (_e(h)["request"], "url"), {"href": API})), 2, "entry 1: request has no method or url")
    ok("url-not-a-url.har", mutate(_set(lambda h: (_e(h)["request"], "url"), "not a url at all")), 3)
    ok("url-bad-ipv6.har", mutate(_set(lambda h: (_e(h)["request"], "url"), "http://[::1/x")), 2,
       "entry 1: request.url cannot be parsed (Invalid IPv6 URL)")
    ok("preflight-url-bad-ipv6.har", mutate(_set(lambda h: (_e(h, 0)["request"], "url"), "http://[::1/x")), 2,
       "entry 0: request.url cannot be parsed (Invalid IPv6 URL)")
    ok("url-bad-port.har", mutate(_set(lambda h: (_e(h)["request"], "url"), "http://api.test:99999/x")), 3)
    ok("url-idn-and-emoji.har", mutate(_set(lambda h: (_e(h)["request"], "url"), "http://bücher.test/😀?q=ü")), 3)
    ok("method-lowercase.har", mutate(_set(lambda h: (_e(h)["request"], "method"), "put")), 3)
    ok("headers-is-string.har", mutate(_set(lambda h: (_e(h)["request"], "headers"), "Origin: x")), 3,
       "entry 1: request.headers is not a list")
    ok("headers-is-null.har", mutate(_set(lambda h: (_e(h)["request"], "headers"), None)), 3)
    ok("headers-is-object.har", mutate(_set(lambda h: (_e(h)["request"], "headers"), {"Origin": APP})), 3,
       about="a name -> value object, as some tools write")
    ok("header-items-not-objects.har", mutate(lambda h: _e(h)["request"]["headers"].extend(
        ["Origin: x", 5, None, [1, 2, 3], True])), 3, "entry 1: request.headers has items that are not headers")
    ok("header-item-pair-lists.har", mutate(lambda h: _e(h, 2)["response"]["headers"].append(
        ["Access-Control-Allow-Origin", APP])), 3)
    ok("header-value-number.har", mutate(lambda h: _e(h, 0)["response"]["headers"].append(
        {"name": "Access-Control-Max-Age", "value": 600})), 3)
    ok("header-value-null.har", mutate(lambda h: _e(h)["request"]["headers"].append({"name": "X-Null", "value": None})), 3)
    ok("header-value-object.har", mutate(lambda h: _e(h)["request"]["headers"].append(
        {"name": "X-Obj", "value": {"a": [1, 2]}})), 3)
    ok("header-name-number.har", mutate(lambda h: _e(h)["request"]["headers"].append({"name": 42, "value": "x"})), 3)
    ok("header-name-missing.har", mutate(lambda h: _e(h)["request"]["headers"].append({"value": "x"})), 3,
       "entry 1: request.headers has items that are not headers")
    ok("header-name-empty.har", mutate(lambda h: _e(h)["request"]["headers"].append({"name": "", "value": "x"})), 3)
    ok("response-missing.har", mutate(_del(lambda h: (_e(h, 2), "response"))), 3)
    ok("response-is-null.har", mutate(_set(lambda h: (_e(h, 2), "response"), None)), 3)
    ok("response-is-string.har", mutate(_set(lambda h: (_e(h, 2), "response"), "200 OK")), 3,
       "entry 2: response is not an object")
    ok("status-is-string.har", mutate(_set(lambda h: (_e(h)["response"], "status"), "200")), 3)
    ok("status-is-word.har", mutate(_set(lambda h: (_e(h)["response"], "status"), "OK")), 3,
       "entry 1: response.status is not a number")
    ok("status-is-float.har", mutate(_set(lambda h: (_e(h)["response"], "status"), 200.0)), 3)
    ok("status-is-bool.har", mutate(_set(lambda h: (_e(h)["response"], "status"), True)), 3,
       "entry 1: response.status is not a number")
    ok("status-negative.har", mutate(_set(lambda h: (_e(h)["response"], "status"), -1)), 3)
    ok("status-huge.har", mutate(_set(lambda h: (_e(h)["response"], "status"), 10**30)), 3)
    ok("status-1e400.har", mutate(_set(lambda h: (_e(h)["response"], "status"), "__BIG__")).replace(b'"__BIG__"', b"1e400"), 3,
       "entry 1: response.status is not a number")
    ok("timings-strings.har", mutate(_set(lambda h: (_e(h), "timings"),
                                          {"blocked": "1", "dns": "x", "send": "", "wait": None, "receive": []})), 3)
    ok("timings-is-list.har", mutate(_set(lambda h: (_e(h), "timings"), [1, 2, 3])), 3)
    ok("timings-all-minus-one.har", mutate(_set(lambda h: (_e(h), "timings"),
                                                {k: -1 for k in ("blocked", "dns", "connect", "ssl", "send", "wait", "receive")})), 3)
    ok("timings-negative.har", mutate(lambda h: (_e(h).update(time=-5), _e(h)["timings"].update(blocked=-0.6, wait=-3))), 3)
    ok("time-is-string.har", mutate(_set(lambda h: (_e(h), "time"), "12.5")), 3)
    ok("time-huge.har", mutate(_set(lambda h: (_e(h), "time"), 1e300)), 3)
    ok("started-garbage.har", mutate(_set(lambda h: (_e(h), "startedDateTime"), "yesterday")), 2,
       "entry 1: startedDateTime is missing or not a date")
    ok("started-number.har", mutate(_set(lambda h: (_e(h), "startedDateTime"), 1714557600000)), 2,
       "entry 1: startedDateTime is missing or not a date")
    ok("started-missing.har", mutate(_del(lambda h: (_e(h), "startedDateTime"))), 2,
       "entry 1: startedDateTime is missing or not a date")
    ok("started-year-1.har", mutate(_set(lambda h: (_e(h), "startedDateTime"), "0001-01-01T00:00:00+01:00")), 3,
       about="a valid, ancient date")
    ok("started-out-of-range.har", mutate(_set(lambda h: (_e(h), "startedDateTime"), "0001-01-01T00:00:00")), 2,
       "entry 1: startedDateTime is missing or not a date", about="local time before year 1")
    ok("started-month-13.har", mutate(_set(lambda h: (_e(h), "startedDateTime"), "2024-13-01T00:00:00Z")), 2,
       "entry 1: startedDateTime is missing or not a date")
    ok("started-seven-digits.har", mutate(_set(lambda h: (_e(h), "startedDateTime"), "2024-05-01T10:00:00.0200000+00:00")), 3,
       about="Fiddler writes 7 fractional digits")
    ok("started-no-timezone.har", mutate(_set(lambda h: (_e(h), "startedDateTime"), "2024-05-01T10:00:00.020")), 3)
    ok("started-out-of-order.har", mutate(lambda h: h["log"]["entries"].reverse()), 3)
    ok("pages-is-object.har", mutate(_set(lambda h: (h["log"], "pages"), {"page_1": {}})), 3,
       "log.pages is not a list")
    ok("pages-items-wrong.har", mutate(_set(lambda h: (h["log"], "pages"), [1, "page_1", None, {"title": "no id"}])), 3)
    ok("page-fields-wrong.har", mutate(lambda h: h["log"]["pages"][0].update(
        title={"t": 1}, startedDateTime=5, pageTimings="fast")), 3)
    ok("page-id-number.har", mutate(lambda h: (h["log"]["pages"][0].update(id=1),
                                               [e.update(pageref=1) for e in h["log"]["entries"]])), 3)
    ok("pageref-unknown.har", mutate(_set(lambda h: (_e(h), "pageref"), "page_404")), 3)
    ok("pageref-object.har", mutate(_set(lambda h: (_e(h), "pageref"), {"id": "page_1"})), 3)
    ok("duplicate-page-ids.har", mutate(lambda h: h["log"]["pages"].append(dict(h["log"]["pages"][0]))), 3)
    ok("creator-is-string.har", mutate(_set(lambda h: (h["log"], "creator"), "Chrome")), 3)
    ok("initiator-and-cache-odd.har", mutate(lambda h: _e(h).update(_initiator="script", _fromCache="disk",
                                                                        _resourceType=5, cache=None)), 3)
    ok("error-is-object.har", mutate(lambda h: _e(h, 2)["response"].update(status=0, _error={"code": -2})), 3)

    # -- real-world oddities ---------------------------------------------------------
    ok("status0-with-error.har", mutate(lambda h: (_e(h, 0)["response"].update(
        status=0, statusText="", headers=[], _error="net::ERR_FAILED"),
        _e(h, 1)["response"].update(status=0, statusText="", headers=[], _error="net::ERR_FAILED"))), 3,
       about="Chrome's entries for a preflight that failed and the request it stopped")
    ok("status0-no-error.har", mutate(lambda h: _e(h, 2)["response"].update(status=0, headers=[])), 3)
    ok("huge-header-value.har", mutate(lambda h: _e(h, 2)["response"]["headers"].append(
        {"name": "Access-Control-Allow-Origin", "value": "x" * 65_536})), 3)
    ok("many-headers.har", mutate(lambda h: _e(h)["request"]["headers"].extend(
        {"name": f"X-H{i}", "value": "v"} for i in range(500))), 3)
    ok("duplicate-odd-case-headers.har", mutate(lambda h: _e(h, 2)["response"]["headers"].extend([
        {"name": "ACCESS-CONTROL-ALLOW-ORIGIN", "value": APP},
        {"name": "access-control-allow-origin", "value": APP}])), 3,
       about="two Allow-Origin lines: MultipleAllowOriginValues")
    ok("http2-pseudo-headers.har", mutate(lambda h: [e["request"]["headers"].extend([
        {"name": ":authority", "value": "api.test"}, {"name": ":method", "value": e["request"]["method"]},
        {"name": ":path", "value": "/items/1"}, {"name": ":scheme", "value": "http"}])
        or e["response"]["headers"].append({"name": ":status", "value": "200"}) for e in h["log"]["entries"]]), 3)
    ok("control-chars-in-values.har", mutate(lambda h: _e(h, 0)["response"]["headers"].extend([
        {"name": "Access-Control-Max-Age", "value": "6\x0000\r\n"},
        {"name": "Access-Control-Allow-Headers", "value": "\x1b[31mred\x1b[0m, x-\u202eevil"}])), 3)
    ok("weird-max-age.har", mutate(lambda h: _e(h, 0)["response"]["headers"].extend([
        {"name": "Access-Control-Max-Age", "value": "1e309"},
        {"name": "access-control-max-age", "value": "-" + "9" * 400}])), 3)
    ok("mixed-good-and-bad-entries.har", mutate(lambda h: h["log"]["entries"].extend(
        [None, 1, {}, {"request": {}}, {"request": {"method": "GET", "url": API}}])), 3,
       "entries 3, 4: entry is not an object; skipped", about="five bad entries after three good ones")
    ok("unicode-everywhere.har", mutate(lambda h: (h["log"]["pages"][0].update(title="ページ — 😀"),
                                                   _e(h, 2)["request"]["headers"].append({"name": "X-Ü", "value": "ü😀"}))), 3)
    ok("extra-unknown-fields.har", mutate(lambda h: (h["log"].update(_custom={"a": [1, 2.50, -0.0, 1e-7]}),
                                                     _e(h).update(_x=None))), 3)
    return cases


CASES = _cases()
SPECIAL = [
    Case("a-directory-of-recordings/", None, 0, "", 6, "a directory stands for the recordings in it"),
    Case("an-empty-directory/", None, 3, "is a directory with no recordings"),
    Case("missing.har", None, 3, "no such file"),
    Case("not-a-directory.har/inner.har", None, 3, "cannot be read: Not a directory",
         "a path through a file"),
    Case("unreadable.har", None, 3, "cannot be read: permission denied",
         "mode 000; as root, read as an unprivileged user"),
    Case("truncated.mitm", None, 3, "is not a readable mitmproxy flow file", "the first flow cut short"),
    Case("good-then-truncated.mitm", None, 0, "flow file damaged after 2 flows", 2, "a crashed mitmdump"),
]
"""Cases that are not one file of bytes; tests/test_bad_inputs.py builds them."""


def write(directory: pathlib.Path = CORPUS) -> list[pathlib.Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for case in CASES:
        path = directory / case.name
        path.write_bytes(case.data)
        written.append(path)
    return written


def table() -> str:
    rows = ["| input | exit | expected |", "|---|---:|---|"]
    for c in CASES + SPECIAL:
        rows.append(f"| `{c.name}` | {c.exit} | {c.expect or 'analysed, no warning'} |")
    return "\n".join(rows)


if __name__ == "__main__":
    if "--table" in sys.argv:
        print(table())
    else:
        for path in write():
            print(path.relative_to(HERE.parent.parent))
