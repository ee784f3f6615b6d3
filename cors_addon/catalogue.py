"""The catalogue of findings: stable ids, severities, explanations and fixes.

Blocked flows use Chromium's ``CorsError`` names as ids, so a finding reads exactly
like DevTools' console and the Issues panel. Every other id is a kebab-case slug that
never changes once released; ``docs/engine.md`` lists them all (``tests/test_catalogue.py``
holds the two together).
"""

from __future__ import annotations

from dataclasses import dataclass

PREFLIGHT_PREFIX = "Response to preflight request doesn't pass access control check: "


@dataclass(frozen=True, slots=True)
class FindingType:
    id: str
    severity: str
    """``error`` (the page lost a response), ``warning`` (time lost to preflights the
    server could avoid) or ``info`` (worth knowing, nothing to fix on the server)."""
    title: str
    explanation: str
    basis: str
    """The Fetch section or browser behaviour the finding rests on."""
    fix: str
    snippet: str | None = None
    """Which snippet family in :data:`SNIPPETS` shows the fix per stack."""


def _blocked(id: str, title: str, explanation: str, basis: str, fix: str, snippet: str) -> FindingType:
    return FindingType(id, "error", title, explanation, basis, fix, snippet)


CONSOLE_TEXT = {
    "MissingAllowOriginHeader": "No 'Access-Control-Allow-Origin' header is present on the requested resource.",
    "WildcardOriginNotAllowed": "The value of the 'Access-Control-Allow-Origin' header in the response must not be the wildcard '*' when the request's credentials mode is 'include'.",
    "MultipleAllowOriginValues": "The 'Access-Control-Allow-Origin' header contains multiple values '{param}', but only one is allowed.",
    "InvalidAllowOriginValue": "The 'Access-Control-Allow-Origin' header contains the invalid value '{param}'.",
    "AllowOriginMismatch": "The 'Access-Control-Allow-Origin' header has a value '{param}' that is not equal to the supplied origin.",
    "InvalidAllowCredentials": "The value of the 'Access-Control-Allow-Credentials' header in the response is '{param}' which must be 'true' when the request's credentials mode is 'include'.",
    "RedirectContainsCredentials": "Redirect location contains a username and password, which is disallowed for cross-origin requests.",
    "PreflightInvalidStatus": "It does not have HTTP ok status.",
    "PreflightDisallowedRedirect": "Redirect is not allowed for a preflight request.",
    "InvalidAllowMethodsPreflightResponse": "Cannot parse Access-Control-Allow-Methods response header field in preflight response.",
    "InvalidAllowHeadersPreflightResponse": "Cannot parse Access-Control-Allow-Headers response header field in preflight response.",
    "MethodDisallowedByPreflightResponse": "Method {param} is not allowed by Access-Control-Allow-Methods in preflight response.",
    "HeaderDisallowedByPreflightResponse": "Request header field {param} is not allowed by Access-Control-Allow-Headers in preflight response.",
}


def console_text(error: str, parameter: str | None) -> str:
    """Chromium's console sentence for a CORS error (``cors_error_string.cc``)."""
    base = error[len("Preflight"):] if error.startswith("Preflight") and error[9:] in CONSOLE_TEXT else error
    text = CONSOLE_TEXT.get(base, error).replace("{param}", parameter or "")
    if error.startswith("Preflight") or error.endswith("PreflightResponse"):
        return PREFLIGHT_PREFIX + text
    return text


_ACAO = "Fetch #cors-check; Chromium cors::CheckAccess"
_PF = "Fetch #cors-preflight-fetch; Chromium PreflightController"

_ORIGIN_FINDINGS = [
    ("MissingAllowOriginHeader", "No Access-Control-Allow-Origin on the response",
     "The response carries no Access-Control-Allow-Origin, so the browser hides it from the page. A simple request was still sent and answered: the server did the work, the page never sees it.",
     "Access-Control-Allow-Origin: {origin}"),
    ("WildcardOriginNotAllowed", "Access-Control-Allow-Origin is * on a credentialed request",
     "With credentials mode 'include' the wildcard is a literal that never matches; the server must echo the exact origin and send Access-Control-Allow-Credentials: true.",
     "Access-Control-Allow-Origin: {origin} + Access-Control-Allow-Credentials: true + Vary: Origin"),
    ("MultipleAllowOriginValues", "Access-Control-Allow-Origin holds more than one value",
     "Two header lines (often one from a proxy and one from the app) or a comma list: browsers combine them and the combined value matches no origin.",
     "Send exactly one Access-Control-Allow-Origin: {origin} (remove the duplicate layer)"),
    ("InvalidAllowOriginValue", "Access-Control-Allow-Origin is not an origin",
     "The value does not parse as a URL, so it can never equal the request's origin.",
     "Access-Control-Allow-Origin: {origin}"),
    ("AllowOriginMismatch", "Access-Control-Allow-Origin names another origin",
     "The value must equal the serialised origin byte for byte: scheme, host and port, no trailing slash, and 'null' only for opaque origins.",
     "Access-Control-Allow-Origin: {origin} + Vary: Origin"),
    ("InvalidAllowCredentials", "Access-Control-Allow-Credentials is not 'true'",
     "For a request with credentials mode 'include' the response must say exactly 'true' (case-sensitive).",
     "Access-Control-Allow-Credentials: true"),
]

FINDINGS: dict[str, FindingType] = {}

for _id, _title, _why, _fix in _ORIGIN_FINDINGS:
    FINDINGS[_id] = _blocked(_id, _title, _why, _ACAO, _fix, "origin")
    FINDINGS["Preflight" + _id] = _blocked(
        "Preflight" + _id, "Preflight: " + _title,
        _why + " On the preflight this stops the real request from being sent at all."
        " Chromium checks this before the status, so a 401/404 preflight without the header is reported here.",
        _PF + " (CORS check before status)", _fix, "origin",
    )

for _type in (
    _blocked("PreflightInvalidStatus", "Preflight answered with a non-2xx status",
             "The preflight passed the origin check but its status is not 200-299. Preflights never carry cookies or Authorization, so an authentication layer in front of OPTIONS answers 401/403/404.",
             _PF + " step 7.1 (ok status)", "Answer OPTIONS with 204 before authentication runs", "options"),
    _blocked("PreflightDisallowedRedirect", "Preflight was redirected",
             "Preflights are fetched without following redirects; any 3xx fails. Usually an http->https or trailing-slash redirect in front of the API.",
             _PF + " (HTTP-network-or-cache fetch, no redirects)", "Serve OPTIONS at the final URL with 204 (no redirect)", "options"),
    _blocked("InvalidAllowMethodsPreflightResponse", "Access-Control-Allow-Methods cannot be parsed",
             "Every item must be an HTTP token separated by commas.", _PF + " step 7.3",
             "Access-Control-Allow-Methods: {methods}", "methods"),
    _blocked("InvalidAllowHeadersPreflightResponse", "Access-Control-Allow-Headers cannot be parsed",
             "Every item must be a header name (an HTTP token) separated by commas.", _PF + " step 7.3",
             "Access-Control-Allow-Headers: {headers}", "headers"),
    _blocked("MethodDisallowedByPreflightResponse", "Method not allowed by the preflight answer",
             "The method must appear in Access-Control-Allow-Methods, compared case-sensitively ('patch' is not 'PATCH'); '*' only counts without credentials.",
             _PF + " step 7.5", "Access-Control-Allow-Methods: {methods}", "methods"),
    _blocked("HeaderDisallowedByPreflightResponse", "Request header not allowed by the preflight answer",
             "Each name the browser listed in Access-Control-Request-Headers must appear in Access-Control-Allow-Headers (case-insensitive); '*' only counts without credentials.",
             _PF + " step 7.6", "Access-Control-Allow-Headers: {headers}", "headers"),
    _blocked("RedirectContainsCredentials", "Redirect target contains user:password",
             "A CORS request may not follow a redirect to a URL with credentials in it.",
             "Fetch #http-redirect-fetch step 8", "Redirect to a URL without user:pass@", None),
    FindingType("preflight-network-error", "error", "Preflight failed at the network level",
                "The OPTIONS request got no HTTP response (connection refused, reset, offline), so the real request was never sent.",
                "Fetch #cors-preflight-fetch (network error)", "Make the API reachable and answer OPTIONS", None),
    FindingType("preflight-not-followed", "info", "Preflight passed but no request followed",
                "Our rules say the answer allows the request, yet the browser did not send it (page closed, request aborted, or a rule this tool does not know).",
                "Chromium sends the actual request right after a passing preflight", "Nothing to change on the server", None),
    FindingType("preflight-not-recorded", "info", "Preflighted request without a recorded preflight",
                "The request needed a preflight, none is in the recording and the cache model holds no valid answer: the recording is filtered (DevTools 'Fetch/XHR' drops preflights) or began mid-session.",
                "Chrome DevTools HAR export obeys the Network panel filter", "Record with mitmproxy or with the 'All' filter", None),
):
    FINDINGS[_type.id] = _type

_REDUNDANT = {
    "no-max-age": ("No Access-Control-Max-Age: answers live 5 s",
                   "Without Access-Control-Max-Age every engine keeps a preflight answer for 5 seconds, so any repeat after that asks again.",
                   "Fetch #http-access-control-max-age (default 5)"),
    "max-age-too-small": ("Access-Control-Max-Age shorter than the gap between requests",
                          "The answer expired before the same request was made again.",
                          "Fetch #cors-preflight-cache"),
    "max-age-zero": ("Access-Control-Max-Age: 0 disables the preflight cache",
                     "A zero lifetime makes every request preflight again.", "Fetch #cors-preflight-fetch step 7.8"),
    "max-age-negative": ("Negative Access-Control-Max-Age",
                         "Chromium reads a negative value as 0 and WebKit as already expired; Firefox does not cache it.",
                         "Chromium ParseAccessControlMaxAge; Firefox nsCORSListenerProxy"),
    "max-age-invalid": ("Access-Control-Max-Age cannot be parsed",
                        "A value that is not a plain number (or two header lines) falls back to 5 s in Chromium and WebKit and is not cached at all by Firefox.",
                        "Chromium base::StringToInt64; Firefox AddResultToCache"),
    "max-age-above-cap": ("Access-Control-Max-Age above the browser's cap",
                          "Engines cap the lifetime (Chromium 7200 s, Firefox 86400 s, WebKit 600 s); the answer expired at the cap.",
                          "Chromium kMaxTimeout; Firefox PREFLIGHT_CACHE max; WebKit maxPreflightCacheTimeout"),
    "wildcard-authorization": ("Access-Control-Allow-Headers: * never caches Authorization",
                               "Chromium lets * cover Authorization when checking a preflight, but its cache lookup follows the spec, so every request with Authorization is preflighted again.",
                               "Fetch #cors-non-wildcard-request-header-name; Chromium PreflightCache::CheckIfRequestCanSkipPreflight"),
    "wildcard-not-cached": ("Firefox never gets cache hits from * answers",
                            "Firefox stores * as a literal token and compares names literally, so wildcard answers are asked again every time.",
                            "Firefox nsPreflightCache::CacheEntry::CheckRequest"),
    "entry-replaced": ("Another preflight replaced the cached answer",
                       "Chromium and WebKit keep one answer per origin and URL; a server that echoes back only the requested method or headers makes alternating requests evict each other.",
                       "Chromium PreflightCache::AppendEntry (cache_[key] = ...)"),
    "cache-bypassed": ("Preflight cache bypassed by the page or DevTools",
                       "The preflight carried Cache-Control: no-cache / Pragma: no-cache: DevTools 'Disable cache', a hard reload or fetch(..., {cache: 'no-store'|'no-cache'|'reload'}) skip the preflight cache. Not the server's fault.",
                       "Chromium PreflightController::RetrieveCacheFlags (LOAD_BYPASS_CACHE)"),
    "repeat-within-max-age": ("Preflight repeated while the answer was still valid",
                              "The previous answer should still have been cached; a different tab, network partition, private window or cache eviction explains it, not the headers.",
                              "Fetch #cors-preflight-cache (partition key)"),
    "url-too-long": ("URL too long to cache",
                     "Chromium never caches preflights for URLs of 1024 characters or more.",
                     "Chromium PreflightCache kMaxKeyLength"),
}

for _cause, (_title, _why, _basis) in _REDUNDANT.items():
    server_fix = _cause in ("no-max-age", "max-age-too-small", "max-age-zero", "max-age-negative",
                            "max-age-invalid", "max-age-above-cap")
    FINDINGS["redundant-" + _cause] = FindingType(
        "redundant-" + _cause, "warning" if server_fix or _cause in ("wildcard-authorization", "entry-replaced") else "info",
        "Redundant preflight: " + _title, _why, _basis,
        {"no-max-age": "Access-Control-Max-Age: {max_age}",
         "max-age-too-small": "Access-Control-Max-Age: {max_age}",
         "max-age-zero": "Access-Control-Max-Age: {max_age}",
         "max-age-negative": "Access-Control-Max-Age: {max_age}",
         "max-age-invalid": "Access-Control-Max-Age: {max_age}",
         "max-age-above-cap": "Nothing gains past the cap; Access-Control-Max-Age: {max_age} states it honestly",
         "wildcard-authorization": "Access-Control-Allow-Headers: {headers} (name Authorization explicitly)",
         "wildcard-not-cached": "Access-Control-Allow-Headers: {headers} and Access-Control-Allow-Methods: {methods} (list names, not *)",
         "entry-replaced": "Access-Control-Allow-Methods: {methods} and Access-Control-Allow-Headers: {headers} (answer with the full list every time)",
         "cache-bypassed": "Turn off DevTools 'Disable cache' or drop cache: 'no-store' from the fetch",
         "repeat-within-max-age": "Nothing to change on the server",
         "url-too-long": "Move long parameters into the body"}[_cause],
        "max-age" if server_fix else ("headers" if _cause != "cache-bypassed" and _cause != "repeat-within-max-age" and _cause != "url-too-long" else None),
    )

for _type in (
    FindingType("parallel-preflights", "info", "Identical preflights sent in parallel",
                "Browsers do not coalesce in-flight preflights: requests issued before the first answer arrives each get their own OPTIONS. Not redundant, but a warm-up request or sequencing saves them.",
                "Chromium PreflightController::PerformPreflightCheck (no in-flight dedupe)",
                "Issue one request first, or send the first one before the burst", None),
    FindingType("per-url-cache-key", "warning", "Preflights that differ only by URL",
                "The preflight cache is keyed by the full URL, query included: /items/1 and /items/2, or ?page=1 and ?page=2, are preflighted separately however long Max-Age is.",
                "Fetch #cors-preflight-cache (URL is part of the key)",
                "Make the request simple (no custom headers, a safelisted Content-Type) or move ids into the body", None),
    FindingType("cache-busting-parameter", "warning", "Cache-busting parameter defeats the preflight cache",
                "A timestamp parameter such as _=1700000000 makes every URL new, so every request is preflighted (jQuery cache:false, some analytics SDKs).",
                "Fetch #cors-preflight-cache (URL is part of the key)",
                "Drop the cache-busting parameter; use Cache-Control on the response instead", None),
    FindingType("cache-carried-over", "info", "Preflight answer reused from an earlier page load",
                "The browser skipped the preflight because an earlier page load cached the answer: counts per page depend on what was loaded before (use a fresh profile for reproducible audits).",
                "Chromium's preflight cache lives in the network context, across navigations",
                "Nothing to change", None),
    FindingType("engine-disagreement", "info", "The browser did something these rules did not predict",
                "A request followed a preflight that our rules reject, under every credentials mode. Please report it with the recording.",
                "The browser is the oracle", "Report the recording to cors-addon", None),
):
    FINDINGS[_type.id] = _type

_SECURITY = (
    ("origin-reflected", "Access-Control-Allow-Origin reflects any origin",
     "The server echoed two or more different request origins back: it likely trusts whatever Origin it is sent, so any site can read these responses in its visitors' browsers.",
     "Fetch #cors-protocol-and-credentials; PortSwigger 'CORS vulnerability with basic origin reflection'",
     "Check Origin against an allow-list before echoing it"),
    ("null-origin-allowed", "Access-Control-Allow-Origin: null",
     "Sandboxed iframes, file: pages and redirect-tainted requests all send Origin: null, so trusting null trusts any of them.",
     "Fetch #origin-header (opaque origins serialise as null)", "Never allow the origin 'null'"),
    ("insecure-origin-trusted", "An http:// origin is trusted by an https:// API",
     "A network attacker can inject script into the plain-HTTP origin and read the HTTPS API's responses through it.",
     "Fetch #cors-check; MDN 'CORS: trusting insecure origins'", "Allow only https:// origins"),
    ("missing-vary-origin", "Access-Control-Allow-Origin varies without Vary: Origin",
     "The answer names different origins for different requests but does not say Vary: Origin, so an HTTP cache or CDN can serve one origin's answer to another (blocking it, or leaking it).",
     "Fetch #cors-protocol-and-http-caches", "Vary: Origin"),
)
for _id, _title, _why, _basis, _fix in _SECURITY:
    FINDINGS[_id] = FindingType(_id, "warning", _title, _why, _basis, _fix)
    FINDINGS[_id + "-credentials"] = FindingType(
        _id + "-credentials", "error", _title + ", with credentials",
        _why + " With Access-Control-Allow-Credentials: true the responses carry the user's session.",
        _basis, _fix)


SNIPPETS: dict[str, dict[str, str]] = {
    "origin": {
        "Express (cors)": "app.use(cors({ origin: '{origin}', credentials: true }))",
        "FastAPI (CORSMiddleware)": "app.add_middleware(CORSMiddleware, allow_origins=['{origin}'], allow_credentials=True)",
        "Go chi (go-chi/cors)": "r.Use(cors.Handler(cors.Options{AllowedOrigins: []string{\"{origin}\"}, AllowCredentials: true}))",
        "nginx": "add_header Access-Control-Allow-Origin '{origin}' always;\nadd_header Vary Origin always;",
        "Django (django-cors-headers)": "CORS_ALLOWED_ORIGINS = ['{origin}']\nCORS_ALLOW_CREDENTIALS = True",
    },
    "options": {
        "Express (cors)": "app.options('*', cors())  // before any auth middleware",
        "FastAPI (CORSMiddleware)": "app.add_middleware(CORSMiddleware, ...)  # added last, so it runs first and answers OPTIONS",
        "Go chi (go-chi/cors)": "r.Use(cors.Handler(...))  // mount before auth middleware",
        "nginx": "if ($request_method = OPTIONS) { return 204; }",
        "Django (django-cors-headers)": "MIDDLEWARE = ['corsheaders.middleware.CorsMiddleware', ...]  # first",
    },
    "methods": {
        "Express (cors)": "app.use(cors({ methods: [{methods_quoted}] }))",
        "FastAPI (CORSMiddleware)": "app.add_middleware(CORSMiddleware, allow_methods=[{methods_quoted}])",
        "Go chi (go-chi/cors)": "cors.Options{AllowedMethods: []string{{methods_go}}}",
        "nginx": "add_header Access-Control-Allow-Methods '{methods}' always;",
        "Django (django-cors-headers)": "CORS_ALLOW_METHODS = [{methods_quoted}]",
    },
    "headers": {
        "Express (cors)": "app.use(cors({ allowedHeaders: [{headers_quoted}] }))",
        "FastAPI (CORSMiddleware)": "app.add_middleware(CORSMiddleware, allow_headers=[{headers_quoted}])",
        "Go chi (go-chi/cors)": "cors.Options{AllowedHeaders: []string{{headers_go}}}",
        "nginx": "add_header Access-Control-Allow-Headers '{headers}' always;",
        "Django (django-cors-headers)": "CORS_ALLOW_HEADERS = [{headers_quoted}]",
    },
    "max-age": {
        "Express (cors)": "app.use(cors({ maxAge: {max_age} }))",
        "FastAPI (CORSMiddleware)": "app.add_middleware(CORSMiddleware, max_age={max_age})",
        "Go chi (go-chi/cors)": "cors.Options{MaxAge: {max_age}}",
        "nginx": "add_header Access-Control-Max-Age {max_age} always;",
        "Django (django-cors-headers)": "CORS_PREFLIGHT_MAX_AGE = {max_age}",
    },
}


def render_fix(finding_id: str, context: dict[str, str]) -> dict:
    """The fix for one finding, filled in with what the recording showed: the exact
    header line to send and a snippet per stack users ask about."""
    ftype = FINDINGS[finding_id]
    values = _fill_values(context)
    header = _fill(ftype.fix, values)
    snippets = {}
    if ftype.snippet:
        snippets = {stack: _fill(text, values) for stack, text in SNIPPETS[ftype.snippet].items()}
    return {"header": header, "snippets": snippets}


def _fill_values(context: dict[str, str]) -> dict[str, str]:
    values = dict(context)
    methods = [m for m in values.get("methods", "").split(", ") if m]
    headers = [h for h in values.get("headers", "").split(", ") if h]
    values["methods_quoted"] = ", ".join(f"'{m}'" for m in methods)
    values["methods_go"] = ", ".join(f'"{m}"' for m in methods)
    values["headers_quoted"] = ", ".join(f"'{h}'" for h in headers)
    values["headers_go"] = ", ".join(f'"{h}"' for h in headers)
    return values


def _fill(template: str, values: dict[str, str]) -> str:
    out = template
    for key, value in values.items():
        out = out.replace("{" + key + "}", str(value))
    return out
