"""Text from traffic, made safe to show on a terminal or in mitmweb.

Any client of the proxy chooses its header values, URLs and origins, and the addon
shows them to the operator: in mitmdump's console, in a flow's comment, in the table
report. Shown raw, a value is a remote control of the operator's terminal: an ``ESC``
(or its 8-bit form, C1 ``CSI`` U+009B) starts a sequence that can clear the screen,
set the window title or rewrite earlier lines (ECMA-48 control functions; CWE-150,
improper neutralization of escape sequences). Bidi overrides and isolates reorder
what is displayed, so the text read is not the text sent (Trojan Source,
CVE-2021-42574); U+2028/U+2029 break a line where no newline is seen. mitmproxy's ``escape_control_characters``
covers only C0 and DEL, hence this module.

Lone surrogates are escaped too: mitmproxy decodes header bytes that are not UTF-8
with ``surrogateescape``, and such a character either fails to encode on the console
(a logging error instead of the line) or goes out as the raw byte it came from, which
may be a C1 control again.

A value can also be long enough to drown a log line (an 8,000-byte method is a valid
header), so a limit cuts it, with a visible count of what was cut.

Standard library only: the addon must load in a bare mitmproxy.
"""

from __future__ import annotations

import re

MAX_METHOD_CHARS = 64
"""Real methods are short tokens; a longer one is an attack or a bug, not information."""
MAX_ORIGIN_CHARS = 300
"""A scheme, a host name (at most 253 characters, RFC 1035 §2.3.4) and a port."""
MAX_HEADER_LIST_CHARS = 300
"""A requested or allowed header list: enough for a real one, a few dozen names."""
MAX_URL_CHARS = 2000
"""Enough for the URLs people read; RFC 9110 §4.1 asks that 8,000-octet URLs work, so
longer ones are real traffic, but past this a log line is no longer readable."""
MAX_MESSAGE_CHARS = 500
"""An analyzer message quotes values from the request and the response (a method, an
``Access-Control-Allow-Origin`` value), each as long as a client or server made it."""

_UNSAFE = r"\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_UNSAFE_CHAR = re.compile(f"[{_UNSAFE}]")
_PIECES = re.compile(f"(?P<plain>[^{_UNSAFE}]+)|(?P<unsafe>[{_UNSAFE}])")


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _escape_match(m: re.Match) -> str:
    return _escape(m.group())


def cut_marker(cut: int) -> str:
    """What replaces the end of a shortened value: a reader must see that, and how
    much, was left out, or a cut value reads as the whole one."""
    return f"…[+{cut:,} chars]"


def printable(text: object, limit: int | None = None) -> str:
    """``text`` as it can be shown to a person: characters that would act on the
    terminal or reorder the display become visible escapes (``\\x1b``, ``\\u202e``).
    With ``limit``, the escaped text is at most ``limit`` characters plus
    :func:`cut_marker`, which counts the characters of ``text`` left out."""
    text = str(text)
    if limit is None or len(text) <= limit:
        shown = _UNSAFE_CHAR.sub(_escape_match, text)
        if limit is None or len(shown) <= limit:
            return shown
    return _shortened(text, limit)


def _shortened(text: str, limit: int) -> str:
    """Escapes widen a character, never narrow it: no more than ``limit`` characters
    of ``text`` can be shown, so only those are looked at. An escape is kept whole or
    left out, never cut in half."""
    parts: list[str] = []
    width = used = 0
    for m in _PIECES.finditer(text, 0, limit):
        piece = m.group()
        room = limit - width
        if m.lastgroup == "plain":
            parts.append(piece[:room])
            width += min(len(piece), room)
            used += min(len(piece), room)
        else:
            shown = _escape(piece)
            if len(shown) > room:
                break
            parts.append(shown)
            width += len(shown)
            used += 1
        if width >= limit:
            break
    return "".join(parts) + cut_marker(len(text) - used)
