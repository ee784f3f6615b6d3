"""The header multimap over mitmproxy's raw fields reads them as mitmproxy does: each
name and value decoded as UTF-8 with ``surrogateescape`` (``items(multi=True)``),
names folded with ``str.lower``. The index is built by whole-block shortcuts (one
decode, one ``lower`` of all the names), so these properties hold it to the plain
per-line reading on any bytes, not only the ASCII a browser sends."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cors_addon.fetch_rules import cors_unsafe_header_names
from cors_addon.headers import Headers

NAME_BYTES = st.one_of(
    st.sampled_from([b"Origin", b"HOST", b"Content-Type", b"x-\xc3\x84rger", b"X-Token", b"\xff\xfeBad", b"K\xe2\x84\xaa",
                     b"Accept", b"Cache-Control", b"Pragma", b"a\nb", b""]),
    st.binary(max_size=12),
)
VALUE_BYTES = st.one_of(st.sampled_from([b"no-cache", b"text/plain", b"\xe2\x82\xac", b"a\nb", b"", b"\xff"]),
                        st.binary(max_size=20))
FIELDS = st.lists(st.tuples(NAME_BYTES, VALUE_BYTES), max_size=12).map(tuple)


def _text(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(fields=FIELDS)
def test_raw_fields_read_as_mitmproxy_reads_them(fields):
    headers = Headers.from_byte_fields(fields)
    lines = [(_text(n).lower(), _text(v)) for n, v in fields]
    assert list(headers.lowered_items()) == lines
    for name in {n for n, _ in lines}:
        values = [v for n, v in lines if n == name]
        assert headers.get_all(name) == values
        assert headers.get(name.upper() if name.isascii() else name) == values[0]
        assert headers.combined(name) == ", ".join(values)
    assert list(headers) == [(_text(n), _text(v)) for n, v in fields]


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(fields=FIELDS)
def test_unsafe_names_are_the_same_from_raw_fields_and_from_text(fields):
    text = Headers([(_text(n), _text(v)) for n, v in fields])
    for wire in (False, True):
        assert cors_unsafe_header_names(Headers.from_byte_fields(fields), wire=wire) == \
            cors_unsafe_header_names(text, wire=wire)


def test_a_non_ascii_name_folds_like_text():
    headers = Headers.from_byte_fields(((b"X-\xc3\x84RGER", b"1"), (b"Origin", b"https://a.example")))
    assert headers.get("x-\u00e4rger") == "1"
    assert list(headers.lowered_items())[0] == ("x-\u00e4rger", "1")
