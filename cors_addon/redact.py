"""Keep the user's secrets out of reports.

Recordings carry sessions: cookies, bearer tokens, API keys in headers and in query
strings (``?access_token=…``, ``?api_key=…``), passwords in ``user:pass@`` URLs.
Reports get pasted into tickets and pull requests, so every report writer shows
traffic only through here unless the user asked for ``--show-secrets``. The annotated
HAR is the exception: it is the user's own recording plus our notes, and keeps all.

What is redacted:

- the values of ``Cookie``, ``Set-Cookie``, ``Authorization``, ``Proxy-Authorization``
  and of any header named like a secret (``X-Api-Key``, ``X-Auth-Token``, ``X-CSRF-Token``…);
- query values named like secrets, and userinfo and fragments of URLs;
- anywhere in a text: JWTs, ``Bearer``/``Basic``/… credentials, and long opaque runs
  of letters and digits (keys, hex and base64 tokens), whatever the name they hide under.

Writers call :func:`redact_report` once (``writers.render`` does it for every
format) and may use :func:`redact_header`, :func:`redact_url` and :func:`redact_text`
for anything else they show. Every function is idempotent and never raises.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import re
from typing import Any
from urllib.parse import unquote_plus, urlsplit, urlunsplit

REDACTED = "[redacted]"
SECRET_HEADERS = frozenset({"cookie", "set-cookie", "authorization", "proxy-authorization"})
"""Always redacted, whatever the value looks like."""
_SECRET_NAME = re.compile(
    r"token|secret|passw|pwd|session|api[-_]?key|apikey|signature|credential|csrf|xsrf|auth|jwt|bearer"
    r"|private|(?:^|[-_])(?:sid|sig|key|code|ticket|pass)$",
    re.I,
)
_NEVER_SECRET_HEADERS = ("access-control-", "sec-fetch-", "sec-ch-")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*)?")
_SCHEME = re.compile(
    r"\b(Bearer|Basic|Digest|Token|Negotiate|NTLM|Hawk|AWS4-HMAC-SHA256|OAuth|ApiKey)\s+(?!\[redacted\])[^\s,;]+",
    re.I,
)
_OPAQUE = re.compile(r"[A-Za-z0-9+/=~_.\-]{22,}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_PART = re.compile(r"[A-Za-z0-9]{22,}={0,2}")
_PARAM = re.compile(r"(?<=[?&;#])([^=&#;\s]+)=([^&#;\s]*)")
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>`]+")
_USERINFO = re.compile(r"(?<=://)[^/?#@\s]*@")


def _opaque(part: str) -> bool:
    digits = sum(c.isdigit() for c in part)
    return digits >= 2 and len(part) - digits >= 2 and len(set(part)) >= 10


def _redact_run(run: str) -> str:
    """Keys and tokens: a stretch of 22 or more letters and digits (128 random bits in
    base64; hex, API keys) mixing both over many distinct characters. Words joined by
    ``-`` or ``_``, version numbers, UUIDs (flow ids) and short asset hashes are not."""
    if _UUID.fullmatch(run):
        return run
    return _PART.sub(lambda m: REDACTED if _opaque(m.group(0)) else m.group(0), run)


def redact_value(value: str) -> str:
    """Token-like parts of a value replaced; the rest kept, so it still explains itself."""
    try:
        value = _JWT.sub(REDACTED, value)
        value = _SCHEME.sub(lambda m: f"{m.group(1)} {REDACTED}", value)
        return _OPAQUE.sub(lambda m: _redact_run(m.group(0)), value)
    except Exception:  # never let redaction break a report  # pragma: no cover
        return REDACTED


@functools.lru_cache(maxsize=4096)  # pure; names repeat (header names, query keys)
def is_secret_name(name: str) -> bool:
    """A header or query parameter whose value is a secret by its name alone."""
    n = name.strip().lower()
    if n in SECRET_HEADERS:
        return True
    if n.startswith(_NEVER_SECRET_HEADERS):
        return False
    return bool(_SECRET_NAME.search(n))


def redact_header(name: str, value: str) -> str:
    return REDACTED if is_secret_name(name) else redact_value(value)


def redact_headers(pairs) -> list[tuple[str, str]]:
    return [(str(n), redact_header(str(n), str(v))) for n, v in pairs]


def _redact_params(text: str) -> str:
    """``a=1&token=…`` with secret values replaced and everything else kept as
    written (no re-encoding): a value goes when its name is a secret's or it holds a
    token once percent-decoded."""
    out = []
    for piece in re.split(r"([&;])", text):
        name, eq, value = piece.partition("=")
        if not eq or not value or value == REDACTED:
            out.append(redact_value(piece))
            continue
        decoded = unquote_plus(value)
        if is_secret_name(unquote_plus(name)) or redact_value(decoded) != decoded:
            out.append(f"{redact_value(name)}={REDACTED}")
        else:
            out.append(piece)
    return "".join(out)


_PLAIN_URL = re.compile(
    r"[a-z][a-z0-9+.\-]*://[^/?\x00-\x20\x7f-\U0010ffff@#%+\[\]][^\x00-\x20\x7f-\U0010ffff@#%+\[\]]*")
"""An ASCII URL with a lower-case scheme, a host, and no userinfo, fragment, escapes,
``+``, brackets, spaces or controls: ``urlsplit``/``urlunsplit`` give it back as
written."""
_TOKEN_SHAPED = re.compile(r"[A-Za-z0-9]{22}|eyJ")
"""What every token pattern needs: a JWT starts ``eyJ``, a key is 22+ letters and
digits in a row (``_PART``); ``Bearer …`` needs a space, which a plain URL lacks."""
_PARAM_SEPARATOR = re.compile(r"[&;]")


def _nothing_to_redact(url: str) -> bool:
    """Whether :func:`redact_url` would give ``url`` back unchanged, decided without
    taking it apart: most URLs in a recording (assets, API calls) hold no secret, and
    this is a fraction of the cost of looking (``tests/test_redaction.py`` holds the
    two to the same answer)."""
    if not _PLAIN_URL.fullmatch(url) or _TOKEN_SHAPED.search(url):
        return False
    mark, query = url.partition("?")[1:]
    return not mark or bool(query) and not any(
        is_secret_name(piece.partition("=")[0]) for piece in _PARAM_SEPARATOR.split(query))


@functools.lru_cache(maxsize=16384)  # pure; a report repeats URLs (assets, endpoints)
def redact_url(url: str) -> str:
    """Userinfo, query and fragment values named like secrets (OAuth's implicit flow
    puts tokens in the fragment) and token-shaped parts anywhere go; the endpoint stays
    readable, and what is kept is kept as written."""
    if _nothing_to_redact(url):
        return url
    return _redact_url(url)


def _redact_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        if not parts.scheme and not parts.netloc:
            return redact_text(url) if "://" in url else _redact_params(url) if "=" in url else redact_value(url)
        netloc = parts.netloc
        if "@" in netloc:
            netloc = f"redacted@{netloc.rsplit('@', 1)[1]}"  # no brackets: they mean IPv6 here
        return urlunsplit((parts.scheme, redact_value(netloc), redact_value(parts.path),
                           _redact_params(parts.query), _redact_params(parts.fragment)))
    except Exception:
        url = _USERINFO.sub("redacted@", url)
        url = _PARAM.sub(lambda m: f"{m.group(1)}={REDACTED}" if is_secret_name(m.group(1)) else m.group(0), url)
        return redact_value(url)


@functools.lru_cache(maxsize=16384)  # pure; notes and messages repeat
def redact_text(text: str) -> str:
    """Free text that may quote URLs and header values: messages, notes, page titles."""
    try:
        text = _URL.sub(lambda m: redact_url(m.group(0)), text)
    except Exception:  # pragma: no cover
        pass
    return redact_value(text)


def _text(value: Any) -> Any:
    return redact_text(value) if isinstance(value, str) else value


def _deep(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _deep(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_deep(v) for v in value)
    return value


@functools.cache
def _field_names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(cls))


def redact_flow(flow):
    """A copy of a :class:`~cors_addon.analyzer.FlowResult` safe to show (the flow
    itself when nothing in it needed redacting: most flows, and copying a hundred
    thousand of them was half the cost of a report)."""
    url = redact_url(flow.url)
    if (url == flow.url and not flow.message and not flow.failed_parameter and not flow.notes
            and not flow.requested and not flow.max_age and _text(flow.origin) == flow.origin):
        return flow
    changes = {
        "url": url,
        "origin": _text(flow.origin),
        "message": _text(flow.message),
        "failed_parameter": _text(flow.failed_parameter),
        "notes": [redact_text(n) for n in flow.notes],
    }
    if flow.requested:
        changes["requested"] = _deep(flow.requested)
    if flow.max_age:
        changes["max_age"] = {**flow.max_age, "raw": _text(flow.max_age.get("raw"))}
    fields = _field_names(type(flow))
    changes = {k: v for k, v in changes.items() if k in fields}
    if all(v == getattr(flow, k) for k, v in changes.items()):
        return flow
    return dataclasses.replace(flow, **changes)


def _redact_page(page):
    url = page.url
    return dataclasses.replace(page, url=redact_url(url) if "://" in url else redact_text(url))


def redact_report(report):
    """A copy of a :class:`~cors_addon.report.Report` whose flows, pages and
    findings show no secrets; numbers, ids and verdicts are unchanged. A report this
    returned is returned as it is (the CLI redacts each recording's report as it
    arrives from its worker, then renders)."""
    if getattr(report, "redacted", False):
        return report
    out = copy.copy(report)
    out.redacted = True
    out.flows = [redact_flow(f) for f in report.flows]
    out.pages = [_redact_page(p) for p in report.pages]
    out.findings = [
        {k: (v if k in ("id", "severity", "title", "count", "flows", "explanation", "basis") else _deep(v))
         for k, v in f.items()}
        for f in report.findings
    ]
    return out
