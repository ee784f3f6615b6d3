"""Tables that stay bounded however long a live session runs: per-scope state keeps its
most recently seen keys only."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

MAX_SCOPES = 4096


def lru_put(table: OrderedDict, key, value) -> None:
    """Store ``value`` as the most recent entry; past ``MAX_SCOPES`` keys the least
    recently seen is forgotten, so a long live session's state stays bounded."""
    table[key] = value
    table.move_to_end(key)
    if len(table) > MAX_SCOPES:
        table.popitem(last=False)


def lru_get(table: OrderedDict, key, make: Callable):
    """The entry for ``key`` (made by ``make`` when new), marked most recent."""
    value = table.get(key)
    if value is None:
        lru_put(table, key, value := make())
    else:
        table.move_to_end(key)
    return value


def bounded_set(table: OrderedDict[str, set[str]], key: str, limit: int = 16) -> set[str]:
    """A per-API-origin set that never grows past ``limit`` items."""
    values = lru_get(table, key, set)
    if len(values) >= limit:
        values.pop()
    return values
