"""An ordered, case-insensitive header multimap.

Real recordings repeat header names (two ``Access-Control-Allow-Origin`` lines are a
CORS error of their own) and mix casings, and HTTP/2 captures carry ``:authority``-style
pseudo-headers. A dict would lose the first two facts, so headers stay a list of pairs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator


class Headers:
    __slots__ = ("_items", "_index")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = [(str(k), str(v)) for k, v in items]
        self._index: dict[str, list[str]] | None = None

    @classmethod
    def from_str_pairs(cls, items: list[tuple[str, str]]) -> Headers:
        """Headers over a list of ``(str, str)`` pairs the caller made and hands over
        (no copy, no conversion): the readers' fast path."""
        headers = cls.__new__(cls)
        headers._items = items
        headers._index = None
        return headers

    def _lookup(self) -> dict[str, list[str]]:
        index = self._index
        if index is None:
            index = {}
            for name, value in self._items:
                key = name.lower()
                values = index.get(key)
                if values is None:
                    index[key] = [value]
                else:
                    values.append(value)
            self._index = index
        return index

    # get_all/get/__contains__ are the engine's hottest calls: they reach the index
    # without a method call in between.
    def get_all(self, name: str) -> list[str]:
        index = self._index
        if index is None:
            index = self._lookup()
        return index.get(name.lower(), [])

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value, as most servers and browsers read single-valued headers."""
        index = self._index
        if index is None:
            index = self._lookup()
        values = index.get(name.lower())
        return values[0] if values else default

    def combined(self, name: str) -> str | None:
        """All lines joined with ``", "``, the way Chromium's ``GetNormalizedHeader`` and
        Fetch's "get" read a header: two lines become one list-valued string."""
        values = self.get_all(name)
        return ", ".join(values) if values else None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._lookup()

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def names(self) -> list[str]:
        """Lower-cased names without pseudo-headers, in first-seen order."""
        return [n for n in self._lookup() if not n.startswith(":")]

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"
