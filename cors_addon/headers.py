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

    def _lookup(self) -> dict[str, list[str]]:
        if self._index is None:
            index: dict[str, list[str]] = {}
            for name, value in self._items:
                index.setdefault(name.lower(), []).append(value)
            self._index = index
        return self._index

    def get_all(self, name: str) -> list[str]:
        return self._lookup().get(name.lower(), [])

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value, as most servers and browsers read single-valued headers."""
        values = self.get_all(name)
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
