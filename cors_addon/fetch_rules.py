"""The Fetch standard's CORS rules as pure functions.

Nothing here knows about mitmproxy, HAR or time. Each function cites the section of
https://fetch.spec.whatwg.org/ it implements; where an engine departs from the spec the
difference is a parameter taken from :mod:`cors_addon.engines`, never an average.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from cors_addon.headers import Headers

SAFELISTED_METHODS = frozenset({"GET", "HEAD", "POST"})
"""#cors-safelisted-method: byte-exact, so ``get`` is not safelisted by the spec."""

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_UNSAFE_BYTES = frozenset(b'"():<>?@[\\]{}\x7f') | (frozenset(range(0x20)) - {0x09})
_LANGUAGE_BYTES = frozenset(
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz *,-.;="
)
_SAFE_CONTENT_TYPES = frozenset(
    {"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"}
)

FORBIDDEN_REQUEST_HEADERS = frozenset(
    {
        "accept-charset", "accept-encoding", "access-control-request-headers",
        "access-control-request-method", "connection", "content-length", "cookie",
        "cookie2", "date", "dnt", "expect", "host", "keep-alive", "origin", "referer",
        "set-cookie", "te", "trailer", "transfer-encoding", "upgrade", "via",
    }
)
"""#forbidden-request-header: scripts cannot set these, so they never count."""

UA_ADDED_REQUEST_HEADERS = frozenset(
    {
        "user-agent", "priority", "if-none-match", "if-modified-since",
        "upgrade-insecure-requests", "purpose", "x-client-data",
        "access-control-request-private-network",
    }
)
"""Headers the browser's network stack adds after the CORS decision (Chromium treats
``user-agent`` as forbidden, adds ``priority`` and revalidation headers itself). A proxy
sees them on the wire, but they never make a request need a preflight."""


_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_PLAIN_ORIGIN = re.compile(r"(https?|wss?)://([A-Za-z0-9.\-]+)(?::([0-9]{0,5}))?(?=[/?#]|\Z)")
"""The common URL's origin read without ``urlsplit``: a special scheme written in
lower case, then a host of letters, digits, dots and dashes (no userinfo), then an
optional port. Any other URL takes the general path, which gives the same answer."""


@functools.lru_cache(maxsize=4096)
def origin_of(url: str) -> str:
    """Serialise the origin of ``url`` (#ascii-serialisation-of-an-origin): scheme,
    host and a non-default port, without a trailing slash. Memoised (bounded): it is
    called several times per exchange, mostly with the same URLs."""
    m = _PLAIN_ORIGIN.match(url)
    if m is not None:
        scheme, host, port = m.groups()
        if not port or int(port) == _DEFAULT_PORTS[scheme]:
            return f"{scheme}://{host.lower()}"
        if int(port) <= 65535:
            return f"{scheme}://{host.lower()}:{int(port)}"
    return _origin_of_any(url)


def _origin_of_any(url: str) -> str:
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "null"
    if not scheme or not host:
        return "null"
    if ":" in host:
        host = f"[{host}]"
    default = _DEFAULT_PORTS.get(scheme)
    if port is None or port == default:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def is_forbidden_request_header(name: str) -> bool:
    n = name.lower()
    return n in FORBIDDEN_REQUEST_HEADERS or n.startswith(("proxy-", "sec-"))


def _has_unsafe_byte(value: bytes) -> bool:
    return any(b in _UNSAFE_BYTES for b in value)


def _mime_essence(value: str) -> str | None:
    """#parse-a-mime-type, reduced to what safelisting needs: the essence, or None
    when the value is not a MIME type at all."""
    essence = value.split(";", 1)[0].strip(" \t\r\n").lower()
    if "/" not in essence:
        return None
    type_, _, subtype = essence.partition("/")
    if not type_ or not subtype or not _TOKEN.match(type_) or not _TOKEN.match(subtype):
        return None
    return essence


def _range_is_safelisted(value: str) -> bool:
    """#simple-range-header-value with allowWhitespace=false: ``bytes=N-`` or
    ``bytes=N-M``, a start is required and only one range."""
    m = re.fullmatch(r"bytes=(\d+)-(\d*)", value)
    if not m:
        return False
    return not m.group(2) or int(m.group(1)) <= int(m.group(2))


_DIGITS = re.compile(r"^\d+$")
_DECIMAL = re.compile(r"^\d+(\.\d+)?$")
_ECT = frozenset({"slow-2g", "2g", "3g", "4g"})

CHROMIUM_EXTRA_SAFELIST = {
    "intervention": lambda v: True,
    "device-memory": _DECIMAL.match,
    "dpr": _DECIMAL.match,
    "downlink": _DECIMAL.match,
    "width": _DIGITS.match,
    "viewport-width": _DIGITS.match,
    "rtt": _DIGITS.match,
    "ect": lambda v: v in _ECT,
    "save-data": lambda v: v.lower() == "on",
}
"""Chromium's ``IsCorsSafelistedHeader`` accepts these client-hint names that the
spec does not, so ``Save-Data: on`` or ``DPR: 2`` sends no preflight in Chrome."""


@functools.lru_cache(maxsize=8192)
def is_safelisted_header(name: str, value: str, *, chromium_extras: bool = False) -> bool:
    """#cors-safelisted-request-header. The 128-byte limit is checked first, for
    every name, as both the spec and Chromium do. Memoised (bounded): the same few
    Accept and Content-Type values repeat on nearly every request. Lengths are in
    wire bytes:
    mitmproxy hands a non-UTF-8 header byte over as a lone surrogate, which
    ``surrogateescape`` turns back into that byte."""
    raw = value.encode("utf-8", "surrogateescape")
    if len(raw) > 128:
        return False
    n = name.lower()
    if n == "accept":
        return not _has_unsafe_byte(raw)
    if n in ("accept-language", "content-language"):
        return all(b in _LANGUAGE_BYTES for b in raw)
    if n == "content-type":
        if _has_unsafe_byte(raw):
            return False
        return _mime_essence(value) in _SAFE_CONTENT_TYPES
    if n == "range":
        return _range_is_safelisted(value)
    if chromium_extras:
        check = CHROMIUM_EXTRA_SAFELIST.get(n)
        return bool(check and check(value))
    return False


_SKIPPED, _UNSAFE, _ADDED, _BY_VALUE = range(4)
_VALUE_CHECKED = frozenset({"accept", "accept-language", "content-language", "content-type", "range"})
_NAME_KINDS: dict[tuple[str, bool], int] = {}


def _name_kind(n: str, chromium_extras: bool) -> int:
    """What a lower-cased header name alone decides: never counted (pseudo-headers,
    forbidden names), added by the browser's network stack, safelisted or not
    depending on its value, or unsafe whatever its value (every other name: only
    the names :func:`is_safelisted_header` checks can be safelisted). Memoised: a
    recording uses a few dozen names."""
    kind = _NAME_KINDS.get((n, chromium_extras))
    if kind is None:
        if n.startswith(":") or is_forbidden_request_header(n):
            kind = _SKIPPED
        elif n in UA_ADDED_REQUEST_HEADERS:
            kind = _ADDED
        elif n in _VALUE_CHECKED or chromium_extras and n in CHROMIUM_EXTRA_SAFELIST:
            kind = _BY_VALUE
        else:
            kind = _UNSAFE
        if len(_NAME_KINDS) < 4096:
            _NAME_KINDS[(n, chromium_extras)] = kind
    return kind


def cors_unsafe_header_names(
    headers: Headers, *, chromium_extras: bool = False, wire: bool = False
) -> list[str]:
    """#cors-unsafe-request-header-names: the sorted, lower-cased set that goes into
    ``Access-Control-Request-Headers``. Safelisted values summing past 1024 bytes
    make every safelisted name unsafe too. Forbidden headers never count (Chromium's
    ``CorsUnsafeNotForbiddenRequestHeaderNames``); with ``wire=True`` the headers the
    browser adds on its own are ignored as well, since a proxy sees those too."""
    unsafe: set[str] = set()
    safelisted: list[tuple[str, int]] = []
    bypass = _cache_bypass_headers(headers) if wire else frozenset()
    for n, value in headers.lowered_items():
        kind = _NAME_KINDS.get((n, chromium_extras))
        if kind is None:
            kind = _name_kind(n, chromium_extras)
        if kind == _SKIPPED or wire and (kind == _ADDED or n in bypass):
            continue
        if kind == _BY_VALUE and is_safelisted_header(n, value, chromium_extras=chromium_extras):
            safelisted.append((n, len(value.encode("utf-8", "surrogateescape"))))
        else:
            unsafe.add(n)
    if sum(size for _, size in safelisted) > 1024:
        unsafe.update(n for n, _ in safelisted)
    return sorted(unsafe)


def _cache_bypass_headers(headers: Headers) -> frozenset[str]:
    """``Cache-Control: no-cache`` with ``Pragma: no-cache`` is what Chromium's network
    stack adds when the cache is bypassed (DevTools "Disable cache", hard reload,
    ``cache: 'no-store'``); it is added after the CORS decision and never appears in
    ``Access-Control-Request-Headers``."""
    cc = (headers.get("cache-control") or "").lower()
    pragma = (headers.get("pragma") or "").lower()
    if "no-cache" in cc and "no-cache" in pragma:
        return frozenset({"cache-control", "pragma"})
    return frozenset()


def parse_header_list(value: str | None) -> list[str] | None:
    """Parse ``Access-Control-Allow-Methods``/``-Headers`` (#cors-preflight-fetch step
    7.3): a comma list of tokens, empty items ignored as Chromium's ``ValuesIterator``
    does. Returns None when an item is not a token (the preflight then fails)."""
    if value is None:
        return []
    items = []
    for item in value.split(","):
        item = item.strip(" \t")
        if not item:
            continue
        if not _TOKEN.match(item):
            return None
        items.append(item)
    return items


def parse_request_header_names(value: str | None) -> list[str]:
    """Read ``Access-Control-Request-Headers`` leniently: browsers send a sorted,
    lower-cased list without spaces, but hand-written clients do not."""
    if not value:
        return []
    return sorted({p.strip().lower() for p in value.split(",") if p.strip()})


@dataclass(frozen=True, slots=True)
class CorsFailure:
    """A failed check, named as Chromium's ``network::mojom::CorsError`` (and CDP's
    ``Network.CorsError``) so users can match it with DevTools. ``parameter`` is what
    Chromium reports as ``failedParameter``: the offending Allow-Origin or
    Allow-Credentials value, the method or the header name; nothing for status,
    list-parsing and redirect errors (verified against CDP in the browser lab)."""

    error: str
    parameter: str | None = None


def check_access(
    headers: Headers, origin: str, credentials: bool, *, preflight: bool = False
) -> CorsFailure | None:
    """The CORS check (#concept-cors-check) in Chromium's order (``cors::CheckAccess``):
    a missing ``Access-Control-Allow-Origin`` first, then ``*`` with credentials, then
    several values, then a mismatch, then ``Access-Control-Allow-Credentials``. For a
    preflight the same failures carry the ``Preflight`` prefix."""
    prefix = "Preflight" if preflight else ""
    allow_origin = headers.combined("access-control-allow-origin")
    if allow_origin is None:
        return CorsFailure(prefix + "MissingAllowOriginHeader")
    if allow_origin == "*":
        if credentials:
            return CorsFailure(prefix + "WildcardOriginNotAllowed")
    elif allow_origin != origin:
        if " " in allow_origin or "," in allow_origin:
            return CorsFailure(prefix + "MultipleAllowOriginValues", allow_origin)
        if allow_origin != "null" and not _parses_as_url(allow_origin):
            return CorsFailure(prefix + "InvalidAllowOriginValue", allow_origin)
        return CorsFailure(prefix + "AllowOriginMismatch", allow_origin)
    if credentials:
        allow_credentials = headers.combined("access-control-allow-credentials")
        if allow_credentials != "true":
            return CorsFailure(prefix + "InvalidAllowCredentials", allow_credentials)
    return None


def _parses_as_url(value: str) -> bool:
    """Chromium parses a non-matching Allow-Origin with ``GURL``; only a value that is
    not a URL at all is "invalid" rather than "mismatched"."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    if not parts.scheme or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.\-]*", parts.scheme):
        return False
    if parts.scheme.lower() in ("http", "https", "ws", "wss", "ftp"):
        return bool(parts.netloc)
    return True


def is_redirect(status: int, headers: Headers) -> bool:
    """A response the network stack would follow: 3xx (not 304) with a Location."""
    return status in (301, 302, 303, 307, 308) and "location" in headers


@dataclass(frozen=True, slots=True)
class PreflightAnswer:
    """What a preflight response allowed, once parsed (#cors-preflight-fetch step 7)."""

    methods: frozenset[str]
    headers: frozenset[str]
    credentials: bool


def check_preflight(
    status: int,
    headers: Headers,
    origin: str,
    method: str,
    unsafe_headers: list[str],
    credentials: bool,
    *,
    wildcard_covers_authorization: bool,
) -> CorsFailure | PreflightAnswer:
    """Evaluate a preflight response the way Chromium's ``PreflightController`` does:
    a redirect fails first; then the CORS check, *before* the status (so a 404 without
    ``Access-Control-Allow-Origin`` is ``PreflightMissingAllowOriginHeader``); then
    the ok status; then parsing Allow-Methods and Allow-Headers; then the method and
    the headers (#cors-preflight-fetch steps 7.1-7.6)."""
    if is_redirect(status, headers):
        return CorsFailure("PreflightDisallowedRedirect")
    failure = check_access(headers, origin, credentials, preflight=True)
    if failure:
        return failure
    if not 200 <= status <= 299:
        return CorsFailure("PreflightInvalidStatus")
    methods = parse_header_list(headers.combined("access-control-allow-methods"))
    if methods is None:
        return CorsFailure("InvalidAllowMethodsPreflightResponse")
    names = parse_header_list(headers.combined("access-control-allow-headers"))
    if names is None:
        return CorsFailure("InvalidAllowHeadersPreflightResponse")
    lowered = frozenset(n.lower() for n in names)
    answer = PreflightAnswer(frozenset(methods), lowered, credentials)
    if not method_allowed(answer, method, wildcard=not credentials):
        return CorsFailure("MethodDisallowedByPreflightResponse", method)
    missing = headers_not_allowed(
        answer,
        unsafe_headers,
        wildcard=not credentials,
        wildcard_covers_authorization=wildcard_covers_authorization,
    )
    if missing:
        return CorsFailure("HeaderDisallowedByPreflightResponse", missing[0])
    return answer


def method_allowed(answer: PreflightAnswer, method: str, *, wildcard: bool) -> bool:
    """#cors-preflight-fetch step 7.5: safelisted methods always pass; otherwise the
    method must be listed (case-sensitive) or ``*`` when not credentialed."""
    if method in SAFELISTED_METHODS or method in answer.methods:
        return True
    return wildcard and "*" in answer.methods


def headers_not_allowed(
    answer: PreflightAnswer,
    unsafe_headers: list[str],
    *,
    wildcard: bool,
    wildcard_covers_authorization: bool,
) -> list[str]:
    """#cors-preflight-fetch steps 7.6-7.7: names compared case-insensitively; ``*``
    counts only without credentials and, by the spec, never for ``Authorization``
    (engines differ: see ``Engine.wildcard_covers_authorization``)."""
    star = wildcard and "*" in answer.headers
    missing = []
    for name in unsafe_headers:
        n = name.lower()
        if n in answer.headers:
            continue
        if star and (n != "authorization" or wildcard_covers_authorization):
            continue
        missing.append(n)
    return missing


def check_redirect_location(location: str | None) -> CorsFailure | None:
    """#http-redirect-fetch step 8: a CORS request whose redirect target carries
    credentials (``user:pass@``) is a network error."""
    if not location:
        return None
    try:
        parts = urlsplit(location)
    except ValueError:
        return None
    if parts.username is not None or parts.password is not None:
        return CorsFailure("RedirectContainsCredentials")
    return None
