"""The Fetch rules, as tables from the standard and from Chromium's behaviour."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cors_addon.fetch_rules import (
    PreflightAnswer,
    check_access,
    check_preflight,
    check_redirect_location,
    cors_unsafe_header_names,
    is_safelisted_header,
    origin_of,
    parse_header_list,
)
from cors_addon.headers import Headers

ORIGIN = "http://app.test"


@pytest.mark.parametrize("url, origin", [
    ("http://API.test:80/x?y#z", "http://api.test"),
    ("https://api.test:443/", "https://api.test"),
    ("https://api.test:8443/", "https://api.test:8443"),
    ("http://[::1]:3000/", "http://[::1]:3000"),
    ("not a url", "null"),
])
def test_origin_serialisation(url, origin):
    assert origin_of(url) == origin


@pytest.mark.parametrize("name, value, chromium, safe", [
    ("Accept", "application/json", False, True),
    ("Accept", "a" * 129, False, False),                 # 128-byte rule, checked first
    ("Accept", "text/html(", False, False),              # unsafe byte
    ("Accept-Language", "en-US,en;q=0.9", False, True),
    ("Content-Language", "de-DE@x", False, False),        # '@' is not in the language set
    ("Content-Type", "text/plain;charset=UTF-8", False, True),
    ("Content-Type", "multipart/form-data; boundary=x", False, True),
    ("Content-Type", "application/json", False, False),
    ("Content-Type", "text/plain; x=\"(\"", False, False),
    ("Range", "bytes=0-10", False, True),
    ("Range", "bytes=100-", False, True),
    ("Range", "bytes=-500", False, False),               # suffix range
    ("Range", "bytes=0-1,5-6", False, False),            # multi-range
    ("Save-Data", "on", True, True),                     # Chromium-only safelist
    ("Save-Data", "on", False, False),
    ("DPR", "2", True, True),
    ("DPR", "two", True, False),
    ("X-Custom", "1", True, False),
])
def test_safelisted_request_headers(name, value, chromium, safe):
    assert is_safelisted_header(name, value, chromium_extras=chromium) is safe


def test_unsafe_names_are_sorted_lowercase_and_skip_forbidden():
    h = Headers([("X-B", "1"), ("Authorization", "x"), ("x-b", "2"), ("Cookie", "a=b"),
                 ("Sec-Fetch-Mode", "cors"), ("Content-Type", "application/json")])
    assert cors_unsafe_header_names(h) == ["authorization", "content-type", "x-b"]


def test_1024_byte_total_makes_safelisted_headers_unsafe():
    h = Headers([("Accept", "a" * 120)] + [("Accept-Language", "b" * 120)] * 8 + [("Content-Language", "c" * 100)])
    assert cors_unsafe_header_names(h) == ["accept", "accept-language", "content-language"]


def test_wire_mode_ignores_headers_the_browser_adds():
    h = Headers([("User-Agent", "x"), ("Priority", "u=1"), ("Cache-Control", "no-cache"),
                 ("Pragma", "no-cache"), ("Accept", "*/*")])
    assert cors_unsafe_header_names(h, wire=True) == []
    assert cors_unsafe_header_names(Headers([("Cache-Control", "max-age=0")]), wire=True) == ["cache-control"]


@pytest.mark.parametrize("value, parsed", [
    ("GET, POST,,PUT", ["GET", "POST", "PUT"]),
    (None, []),
    ("GET POST", None),
    ("x-a, x-b ", ["x-a", "x-b"]),
    ("x-a, (bad)", None),
])
def test_allow_list_parsing(value, parsed):
    assert parse_header_list(value) == parsed


@pytest.mark.parametrize("headers, credentials, error, parameter", [
    ([], False, "MissingAllowOriginHeader", None),
    ([("Access-Control-Allow-Origin", "*")], False, None, None),
    ([("Access-Control-Allow-Origin", "*")], True, "WildcardOriginNotAllowed", None),
    ([("Access-Control-Allow-Origin", ORIGIN), ("Access-Control-Allow-Origin", ORIGIN)], False,
     "MultipleAllowOriginValues", f"{ORIGIN}, {ORIGIN}"),
    ([("Access-Control-Allow-Origin", "http://a.test,http://b.test")], False,
     "MultipleAllowOriginValues", "http://a.test,http://b.test"),
    ([("Access-Control-Allow-Origin", "not-an-origin")], False, "InvalidAllowOriginValue", "not-an-origin"),
    ([("Access-Control-Allow-Origin", ORIGIN + "/")], False, "AllowOriginMismatch", ORIGIN + "/"),
    ([("Access-Control-Allow-Origin", "null")], False, "AllowOriginMismatch", "null"),
    ([("Access-Control-Allow-Origin", ORIGIN)], True, "InvalidAllowCredentials", None),
    ([("Access-Control-Allow-Origin", ORIGIN), ("Access-Control-Allow-Credentials", "True")], True,
     "InvalidAllowCredentials", "True"),
    ([("Access-Control-Allow-Origin", ORIGIN), ("Access-Control-Allow-Credentials", "true")], True, None, None),
])
def test_cors_check_in_chromium_order(headers, credentials, error, parameter):
    failure = check_access(Headers(headers), ORIGIN, credentials)
    assert (failure.error if failure else None) == error
    if failure:
        assert failure.parameter == parameter


def test_null_origin_matches_literal_null():
    assert check_access(Headers([("Access-Control-Allow-Origin", "null")]), "null", False) is None


def _pf(status, headers, method="PUT", unsafe=(), credentials=False, wildcard_auth=True):
    return check_preflight(status, Headers(headers), ORIGIN, method, list(unsafe), credentials,
                           wildcard_covers_authorization=wildcard_auth)


def test_missing_allow_origin_is_reported_before_bad_status():
    """Chromium checks the CORS headers before the status: a 404 without ACAO is
    PreflightMissingAllowOriginHeader, not PreflightInvalidStatus."""
    assert _pf(404, []).error == "PreflightMissingAllowOriginHeader"
    assert _pf(404, [("Access-Control-Allow-Origin", ORIGIN)]).error == "PreflightInvalidStatus"


def test_redirected_preflight_fails_first():
    assert _pf(302, [("Location", "/x")]).error == "PreflightDisallowedRedirect"


@pytest.mark.parametrize("headers, method, unsafe, credentials, error, parameter", [
    ([("Access-Control-Allow-Methods", "PUT")], "PUT", (), False, None, None),
    ([("Access-Control-Allow-Methods", "PATCH")], "patch", (), False, "MethodDisallowedByPreflightResponse", "patch"),
    ([("Access-Control-Allow-Methods", "*")], "DELETE", (), False, None, None),
    ([("Access-Control-Allow-Methods", "*")], "DELETE", (), True, "PreflightWildcardOriginNotAllowed", None),
    ([("Access-Control-Allow-Methods", "GET POST")], "PUT", (), False, "InvalidAllowMethodsPreflightResponse", None),
    ([("Access-Control-Allow-Methods", "PUT"), ("Access-Control-Allow-Headers", "x-a;")], "PUT", (), False,
     "InvalidAllowHeadersPreflightResponse", None),
    ([("Access-Control-Allow-Methods", "PUT"), ("Access-Control-Allow-Headers", "X-A")], "PUT", ["x-a", "x-b"], False,
     "HeaderDisallowedByPreflightResponse", "x-b"),
    ([("Access-Control-Allow-Headers", "*")], "POST", ["authorization"], False, None, None),
])
def test_preflight_method_and_header_checks(headers, method, unsafe, credentials, error, parameter):
    origin = [("Access-Control-Allow-Origin", "*" if not credentials else "*")]
    result = _pf(204, origin + headers, method, unsafe, credentials)
    if error is None:
        assert isinstance(result, PreflightAnswer)
    else:
        assert result.error == error and result.parameter == parameter


def test_spec_wildcard_never_covers_authorization():
    result = _pf(204, [("Access-Control-Allow-Origin", "*"), ("Access-Control-Allow-Headers", "*")],
                 "POST", ["authorization"], wildcard_auth=False)
    assert result.error == "HeaderDisallowedByPreflightResponse" and result.parameter == "authorization"


def test_redirect_with_credentials_in_location():
    assert check_redirect_location("http://user:pw@api.test/").error == "RedirectContainsCredentials"
    assert check_redirect_location("http://api.test/") is None


_URL_PIECES = st.text(st.sampled_from(list("aZ09.-:/?#@[]% \t\\é_~htps")), max_size=14)


@settings(max_examples=2000, deadline=None, derandomize=True, database=None)
@given(scheme=st.sampled_from(["http", "https", "ws", "wss", "HTTP", "Https", "ftp", ""]), host=_URL_PIECES,
       port=st.sampled_from(["", ":", ":80", ":443", ":080", ":8080", ":99999", ":65535", ":0", ":a", "::1"]),
       tail=st.sampled_from(["", "/", "/p?q", "?x", "#f", "/a:b@c"]))
def test_origin_shortcut_gives_what_urlsplit_gives(scheme, host, port, tail):
    from cors_addon.fetch_rules import _origin_of_any

    url = f"{scheme}://{host}{port}{tail}"
    assert origin_of.__wrapped__(url) == _origin_of_any(url)


def _unsafe_names_by_the_definition(headers, chromium_extras, wire):
    """#cors-unsafe-request-header-names written out header by header."""
    from cors_addon.fetch_rules import UA_ADDED_REQUEST_HEADERS, _cache_bypass_headers, is_forbidden_request_header

    skip = UA_ADDED_REQUEST_HEADERS | _cache_bypass_headers(headers) if wire else frozenset()
    unsafe, sizes = set(), []
    for name, value in headers:
        n = name.lower()
        if n.startswith(":") or is_forbidden_request_header(n) or n in skip:
            continue
        if is_safelisted_header(n, value, chromium_extras=chromium_extras):
            sizes.append((n, len(value.encode("utf-8", "surrogateescape"))))
        else:
            unsafe.add(n)
    if sum(s for _, s in sizes) > 1024:
        unsafe.update(n for n, _ in sizes)
    return sorted(unsafe)


@settings(max_examples=1500, deadline=None, derandomize=True, database=None)
@given(pairs=st.lists(st.tuples(
    st.sampled_from(["Accept", "content-type", "Content-Language", "Range", "DPR", "Save-Data", "Width", "X-Custom",
                     "Cache-Control", "Pragma", "Priority", "User-Agent", ":method", "Sec-Fetch-Mode", "Proxy-X",
                     "If-None-Match", "Authorization", "Origin", "ECT"]),
    st.one_of(st.sampled_from(["application/json", "text/plain", "no-cache", "on", "2", "bytes=0-", "4g", "en"]),
              st.text(max_size=700))), max_size=8),
    chromium_extras=st.booleans(), wire=st.booleans())
def test_unsafe_header_names_follow_the_definition(pairs, chromium_extras, wire):
    headers = Headers(pairs)
    assert cors_unsafe_header_names(headers, chromium_extras=chromium_extras, wire=wire) == \
        _unsafe_names_by_the_definition(headers, chromium_extras, wire)
