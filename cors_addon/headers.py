"""An ordered, case-insensitive header multimap.

Real recordings repeat header names (two ``Access-Control-Allow-Origin`` lines are a
CORS error of their own) and mix casings, and HTTP/2 captures carry ``:authority``-style
pseudo-headers. A dict would lose the first two facts, so headers stay a list of pairs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from operator import itemgetter

_FIRST, _SECOND = itemgetter(0), itemgetter(1)


def _decode_all(parts: list[bytes]) -> list[str]:
    """Each part as UTF-8 with ``surrogateescape`` (how mitmproxy turns header bytes
    into text), in one decode of the parts joined by newlines when no part holds one
    (HTTP forbids them in header names and values, so nearly always)."""
    texts = b"\n".join(parts).decode("utf-8", "surrogateescape").split("\n")
    if len(texts) == len(parts):
        return texts
    return [p.decode("utf-8", "surrogateescape") for p in parts]


def _lowered_names(names: list[bytes]) -> list[str]:
    """``[n.decode().lower() for n in names]`` in one ``lower`` of them all: header
    names are tokens (RFC 9110 §5.6.2), ASCII, whose lower case is the same in bytes
    and in text. A name that is not ASCII (a broken client's) takes the text way, which
    also folds non-ASCII letters, as the index always did. About a microsecond less
    for each header block the live helper indexes, two per flow."""
    joined = b"\n".join(names)
    if joined.isascii():
        keys = joined.lower().decode("ascii").split("\n")
        if len(keys) == len(names):
            return keys
    return [n.lower() for n in _decode_all(names)]


class Headers:
    """Pairs are kept as the source gave them (text pairs, the HAR reader's structs, or
    mitmproxy's raw byte fields) and turned into text pairs only if someone iterates
    them; a case-insensitive index is built on the first lookup, with C-level
    ``map``/``zip`` calls rather than a Python loop per header (a Chrome request
    carries about sixteen, and most are never asked for)."""

    __slots__ = ("_items", "_raw", "_index", "_multi", "_lines")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] | None = [(str(k), str(v)) for k, v in items]
        self._raw: list | tuple | None = None
        """Unconverted headers: a list of objects with ``name`` and ``value``, or a
        tuple of ``(bytes, bytes)`` fields."""
        self._index: dict[str, str] | None = None
        self._multi: dict[str, list[str]] | None = None
        self._lines: tuple[list[str], list[str]] | None = None
        """Every line's lower-cased name and value, kept from building the index."""

    @classmethod
    def from_str_pairs(cls, items: list[tuple[str, str]]) -> Headers:
        """Headers over a list of ``(str, str)`` pairs the caller made and hands over
        (no copy, no conversion)."""
        headers = cls.__new__(cls)
        headers._items = items
        headers._raw = headers._index = headers._multi = headers._lines = None
        return headers

    @classmethod
    def from_named(cls, named: list) -> Headers:
        """Headers over objects with ``name`` and ``value`` string attributes (the HAR
        reader's decoded structs)."""
        headers = cls.__new__(cls)
        headers._raw = named
        headers._items = headers._index = headers._multi = headers._lines = None
        return headers

    @classmethod
    def from_byte_fields(cls, fields: tuple[tuple[bytes, bytes], ...]) -> Headers:
        """Headers over mitmproxy's raw ``fields``, decoded as ``items(multi=True)``
        would decode them, when first needed."""
        headers = cls.__new__(cls)
        headers._raw = fields
        headers._items = headers._index = headers._multi = headers._lines = None
        return headers

    def _names_values(self) -> tuple[list[str], list[str]]:
        items = self._items
        if items is not None:
            return list(map(_FIRST, items)), list(map(_SECOND, items))
        raw = self._raw
        if type(raw) is tuple:
            return _decode_all(list(map(_FIRST, raw))), _decode_all(list(map(_SECOND, raw)))
        return [h.name for h in raw], [h.value for h in raw]  # type: ignore[union-attr]

    def _pairs(self) -> list[tuple[str, str]]:
        items = self._items
        if items is None:
            items = self._items = list(zip(*self._names_values()))
            self._raw = None
        return items

    def _lookup(self) -> dict[str, str]:
        """Lower-cased name -> first value; when a name repeats, ``_multi`` keeps
        every value (the index then maps to the first of them)."""
        index = self._index
        if index is None:
            raw = self._raw
            if type(raw) is tuple:
                keys, values = _lowered_names(list(map(_FIRST, raw))), _decode_all(list(map(_SECOND, raw)))
            else:
                names, values = self._names_values()
                keys = list(map(str.lower, names))
            self._lines = (keys, values)
            index = dict(zip(keys, values))
            if len(index) < len(keys):
                multi: dict[str, list[str]] = {}
                for key, value in zip(keys, values):
                    if key in multi:
                        multi[key].append(value)
                    else:
                        multi[key] = [value]
                self._multi = multi
                index = {key: vs[0] for key, vs in multi.items()}
            self._index = index
        return index

    # get_all/get/__contains__ are the engine's hottest calls: they reach the index
    # without a method call in between.
    def get_all(self, name: str) -> list[str]:
        index = self._index
        if index is None:
            index = self._lookup()
        if self._multi is not None:
            return self._multi.get(name.lower(), [])
        value = index.get(name.lower())
        return [] if value is None else [value]

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value, as most servers and browsers read single-valued headers."""
        index = self._index
        if index is None:
            index = self._lookup()
        return index.get(name.lower(), default)

    def combined(self, name: str) -> str | None:
        """All lines joined with ``", "``, the way Chromium's ``GetNormalizedHeader`` and
        Fetch's "get" read a header: two lines become one list-valued string."""
        index = self._index
        if index is None:
            index = self._lookup()
        if self._multi is None:
            return index.get(name.lower())
        values = self._multi.get(name.lower())
        return ", ".join(values) if values else None

    def lowered_items(self) -> Iterator[tuple[str, str]]:
        """Every line as (lower-cased name, value), in order, from what the index was
        built of: the rules that walk every line (the CORS-unsafe names) neither
        decode raw fields a second time nor lower each name again."""
        if self._index is None:
            self._lookup()
        return zip(*self._lines)  # type: ignore[misc]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._lookup()

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._pairs())

    def __len__(self) -> int:
        return len(self._items if self._items is not None else self._raw or ())

    def names(self) -> list[str]:
        """Lower-cased names without pseudo-headers, in first-seen order."""
        return [n for n in self._lookup() if not n.startswith(":")]

    def items(self) -> list[tuple[str, str]]:
        return list(self._pairs())

    def __repr__(self) -> str:
        return f"Headers({self._pairs()!r})"
