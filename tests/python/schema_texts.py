"""Instance spellings shared by the JSON Schema corpus tests: key orders and
byte-vocabulary acceptance."""

from __future__ import annotations

from typing import Any

from conftest import BYTE_EOS
from corral import GrammarMatcher


def key_order(schema: Any) -> dict[str, int]:
    """Property names by first appearance in `properties` maps, document order."""
    order: dict[str, int] = {}

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            for k, sub in v.items():
                if k == "properties" and isinstance(sub, dict):
                    for name in sub:
                        order.setdefault(name, len(order))
                if k in ("enum", "const"):
                    values(sub)
                elif k not in ("default", "examples"):
                    walk(sub)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    def values(v: Any) -> None:
        # Keys of object constants, in their own order.
        if isinstance(v, dict):
            for name, sub in v.items():
                order.setdefault(name, len(order))
                values(sub)
        elif isinstance(v, list):
            for x in v:
                values(x)

    walk(schema)
    return order


def reorder(value: Any, order: dict[str, int]) -> Any:
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (0, order[k]) if k in order else (1, 0))
        return {k: reorder(value[k], order) for k in keys}
    if isinstance(value, list):
        return [reorder(x, order) for x in value]
    return value


def accepts(compiled: Any, text: str) -> bool:
    m = GrammarMatcher(compiled)
    return bool(m.accept_string(text.encode()) and m.accept_token(BYTE_EOS) and m.is_terminated())
