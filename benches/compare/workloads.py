"""The four workloads: grammars, the valid texts for each, and their token ids.

A workload is a list of groups; a group is one grammar spec (see `engines.py`)
and the texts teacher-forced through it. Every text is tokenised here once,
by `qwen.tokenize`, and the same ids go to every engine.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import qwen

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
CORPORA = HERE.parents[1].parent / "shared" / "corpora"
MASKBENCH = CORPORA / "maskbench-dev"
GBNF = CORPORA / "gbnf"

WORKLOADS = ("json", "schemas", "gbnf", "regex")
TITLES = {
    "json": "any JSON value",
    "schemas": "JSON Schemas (MaskBench)",
    "gbnf": "GBNF: arithmetic + C-like",
    "regex": "7 regexes",
}


@dataclass
class Text:
    """One valid text: its id, the text, and its token ids (no stop token)."""

    id: str
    text: str
    ids: list[int]


@dataclass
class Group:
    """One grammar and the texts run through it."""

    id: str
    spec: dict[str, Any]
    texts: list[Text] = field(default_factory=list)


def _text(tid: str, text: str) -> Text:
    return Text(tid, text, qwen.tokenize(text))


def compact(value: Any) -> str:
    """The compact JSON serialisation every engine is fed."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def maskbench_rows() -> list[dict[str, Any]]:
    """Every MaskBench schema row, sorted by id (7,993 of them)."""
    rows: list[dict[str, Any]] = []
    files = sorted(MASKBENCH.glob("*.jsonl"))
    if not files:
        raise SystemExit(f"no MaskBench data under {MASKBENCH}")
    for path in files:
        with path.open(encoding="utf-8") as f:
            rows.extend(json.loads(line) for line in f if line.strip())
    rows.sort(key=lambda r: str(r["id"]))
    return rows


def first_valid(row: dict[str, Any]) -> Any:
    for t in row.get("tests", []):
        if t.get("valid"):
            return t["data"]
    return _MISSING


_MISSING = object()


def _resolve(schema: Any, root: Any, depth: int = 0) -> Any:
    """Follow a local `$ref` ("#/..."); anything else is returned as is."""
    while isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and depth < 20:
        ref = schema["$ref"]
        if not ref.startswith("#"):
            return schema
        node: Any = root
        for part in ref.lstrip("#").split("/"):
            if not part:
                continue
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            else:
                return schema
        schema = node
        depth += 1
    return schema


def _property_schemas(schema: Any, root: Any, keys: Any = None, depth: int = 0) -> dict[str, Any]:
    """Named properties in schema order, looking through allOf/anyOf/oneOf too.

    With `keys` (the object's keys), an anyOf/oneOf contributes the first
    branch that names every key not named so far (the branch the object
    takes, in that branch's own order), else all its branches in turn."""
    schema = _resolve(schema, root)
    out: dict[str, Any] = {}
    if not isinstance(schema, dict) or depth > 10:
        return out
    props = schema.get("properties")
    if isinstance(props, dict):
        out.update(props)
    for key in ("allOf", "anyOf", "oneOf"):
        branches = schema.get(key)
        if not isinstance(branches, list):
            continue
        named = [_property_schemas(b, root, keys, depth + 1) for b in branches]
        if key != "allOf" and keys is not None:
            rest = [k for k in keys if k not in out]
            covering = [n for n in named if rest and all(k in n for k in rest)]
            if covering:
                named = covering[:1]
        for n in named:
            for k, v in n.items():
                out.setdefault(k, v)
    return out


def order_like_schema(value: Any, schema: Any, root: Any, depth: int = 0) -> Any:
    """`value` with every object's keys in the schema's `properties` order
    (named properties first, others after in their own order), recursively."""
    if depth > 64:
        return value
    schema = _resolve(schema, root)
    if isinstance(value, dict):
        named = _property_schemas(schema, root, list(value))
        keys = [k for k in named if k in value] + [k for k in value if k not in named]
        extra = schema.get("additionalProperties") if isinstance(schema, dict) else None
        patterns = schema.get("patternProperties") if isinstance(schema, dict) else None

        def value_schema(k: str) -> Any:
            if k in named:
                return named[k]
            # A key a pattern matches takes that pattern's schema (the first one).
            for p, sub in (patterns or {}).items():
                try:
                    if re.search(p, k):
                        return sub
                except re.error:
                    continue
            return extra if isinstance(extra, dict) else {}

        return {k: order_like_schema(value[k], value_schema(k), root, depth + 1) for k in keys}
    if isinstance(value, list):
        items = schema.get("items") if isinstance(schema, dict) else None
        prefix = schema.get("prefixItems") if isinstance(schema, dict) else None
        out = []
        for i, v in enumerate(value):
            sub: Any = {}
            if isinstance(prefix, list) and i < len(prefix):
                sub = prefix[i]
            elif isinstance(items, list) and i < len(items):
                sub = items[i]
            elif isinstance(items, dict):
                sub = items
            out.append(order_like_schema(v, sub, root, depth + 1))
        return out
    return value


def json_workload(n: int, seed: int) -> list[Group]:
    """`n` valid MaskBench instances (20 B to 4 KB compact), as one "any JSON" group."""
    docs: list[tuple[str, str]] = []
    for row in maskbench_rows():
        k = 0
        for t in row.get("tests", []):
            if not t.get("valid"):
                continue
            text = compact(t["data"])
            if 20 <= len(text.encode()) <= 4000:
                docs.append((f"{row['id']}#{k}", text))
            k += 1
    picked = random.Random(seed).sample(docs, min(n, len(docs)))
    spec = {"kind": "json", "gbnf": (DATA / "json_value.gbnf").read_text()}
    return [Group("json", spec, [_text(tid, text) for tid, text in picked])]


def schema_workload(n: int | None, seed: int) -> list[Group]:
    """A fixed-seed sample of `n` schemas that have a valid instance (each with
    its first valid instance, keys in schema order), or with `n=None` every
    schema (those without a valid instance are compile-only groups)."""
    rows = maskbench_rows()
    if n is not None:
        with_instance = [r for r in rows if first_valid(r) is not _MISSING]
        rows = random.Random(seed).sample(with_instance, min(n, len(with_instance)))
        rows.sort(key=lambda r: str(r["id"]))
    groups: list[Group] = []
    for row in rows:
        schema = row["schema"]
        group = Group(str(row["id"]), {"kind": "schema", "schema": schema})
        data = first_valid(row)
        if data is not _MISSING:
            group.texts.append(_text(group.id, compact(order_like_schema(data, schema, schema))))
        groups.append(group)
    return groups


def gbnf_workload(quick: bool) -> list[Group]:
    texts = json.loads((DATA / "gbnf_texts.json").read_text())
    groups = []
    for name in ("arithmetic", "c"):
        spec = {"kind": "gbnf", "grammar": (GBNF / f"{name}.gbnf").read_text()}
        chosen = texts[name][1:] if quick else texts[name]
        groups.append(Group(name, spec, [_text(f"{name}#{i}", t) for i, t in enumerate(chosen)]))
    return groups


def regex_workload(quick: bool) -> list[Group]:
    groups = []
    for entry in json.loads((DATA / "regexes.json").read_text()):
        chosen = entry["texts"][:1] if quick else entry["texts"]
        groups.append(
            Group(
                entry["name"],
                {"kind": "regex", "pattern": entry["pattern"]},
                [_text(f"{entry['name']}#{i}", t) for i, t in enumerate(chosen)],
            )
        )
    return groups


def build(name: str, *, quick: bool, full: bool, seed: int, schemas: int) -> list[Group]:
    if name == "json":
        return json_workload(10 if quick else 50, seed)
    if name == "schemas":
        return schema_workload(None if full else (30 if quick else schemas), seed)
    if name == "gbnf":
        return gbnf_workload(quick)
    if name == "regex":
        return regex_workload(quick)
    raise SystemExit(f"unknown workload {name!r} (choose from {', '.join(WORKLOADS)})")
