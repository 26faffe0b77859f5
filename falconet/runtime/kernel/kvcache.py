"""The key-value store of namespaces as the engine sees it: the store's entries plus an in-memory copy, so
an expression's ``kv()`` reads without awaiting."""
from __future__ import annotations

from typing import Any

from falconet.runtime.kernel.errors import IllegalArgument
from falconet.runtime.kernel.execution import format_instant, now
from falconet.runtime.store.base import Store


class KVCache:
    def __init__(self, store: Store):
        self.store = store
        self._entries: dict[tuple[str, str], dict[str, Any]] = {}

    async def load(self, namespaces: set[str]) -> None:
        """Read every entry of ``namespaces`` from the store."""
        for namespace in namespaces:
            for entry in await self.store.kv_list(namespace):
                self._entries[(namespace, entry["key"])] = entry

    def cached(self, namespace: str, key: str) -> dict[str, Any] | None:
        entry = self._entries.get((namespace, key))
        if entry is None:
            return None
        exp = entry.get("expirationDate")
        if exp and exp < format_instant(now()):
            return None
        return entry

    async def get(self, namespace: str, key: str) -> dict[str, Any] | None:
        entry = await self.store.kv_get(namespace, key)
        if entry is not None:
            self._entries[(namespace, key)] = entry
        return entry

    async def put(self, namespace: str, key: str, value: Any, *, kv_type: str | None = None,
                  ttl: str | None = None, description: str | None = None) -> None:
        entry = kv_entry(self._entries.get((namespace, key)), value, kv_type, ttl, description)
        await self.store.kv_put(namespace, key, entry)
        self._entries[(namespace, key)] = dict(entry, key=key)

    async def delete(self, namespace: str, key: str) -> bool:
        self._entries.pop((namespace, key), None)
        return await self.store.kv_delete(namespace, key)


def kv_entry(previous: dict[str, Any] | None, value: Any, kv_type: str | None, ttl: str | None,
             description: str | None) -> dict[str, Any]:
    from falconet.runtime.expr.durations import parse_duration

    if kv_type is None:
        if isinstance(value, bool):
            kv_type = "BOOLEAN"
        elif isinstance(value, (int, float)):
            kv_type = "NUMBER"
        elif isinstance(value, (dict, list)):
            kv_type = "JSON"
        else:
            kv_type = "STRING"
    stamp = format_instant(now())
    entry: dict[str, Any] = {
        "type": kv_type,
        "value": value,
        "creationDate": (previous or {}).get("creationDate", stamp),
        "updateDate": stamp,
    }
    if description:
        entry["description"] = description
    if ttl:
        try:
            entry["expirationDate"] = format_instant(now() + parse_duration(ttl))
        except ValueError as exc:
            raise IllegalArgument(f"Invalid ttl: {exc}") from None
        except OverflowError:
            raise IllegalArgument(f"Invalid ttl `{ttl}`: the expiration date is beyond year 9999") from None
    return entry
