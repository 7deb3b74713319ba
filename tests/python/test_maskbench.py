"""Real-world schemas: ``../shared/corpora/maskbench-dev/*.jsonl`` (7,993 schemas
from JSONSchemaBench / MaskBench).

Every schema compiles or raises ``UnsupportedSchemaError``: never another
exception (``LimitExceededError`` included: the default limits hold every
schema here, the 938 KB Kubernetes one of all definitions too), a hang or a
crash. (A schema no value satisfies is counted as ``unsatisfiable`` while no
test instance of it is valid.) Compiled with
``strict_mode=False``, its valid instances should be accepted and its invalid
ones must be rejected (the compact ``json.dumps`` text, in the instance's key
order or sorted by first appearance in the schema, non-ASCII escaped or raw,
fed through the byte vocabulary and ended with the stop token; a third order
follows the front-end's merge of ``properties`` (see ``SchemaKeyOrder``), as
the first-appearance order misses nested objects whose ``properties`` list the
same names in another order). Some instances
marked invalid are valid for python-jsonschema (formats and regexes it does not
check the same way): an accepted "invalid" instance counts as a failure only if
``jsonschema`` (with its format checker) also rejects it; those it accepts are
counted separately.

Per split the numbers are printed and compared with
``tests/schema/maskbench_baseline.json``: a lower compiled share fails.
Regenerate with::

    CORRAL_UPDATE_BASELINE=1 python -m pytest tests/python/test_maskbench.py -s
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jsonschema
import pytest

from conftest import CORPORA
from corral import (
    GrammarCompiler,
    GrammarError,
    TokenizerInfo,
    UnsupportedSchemaError,
)
from schema_texts import accepts, key_order, reorder

BENCH = CORPORA / "maskbench-dev"
SPLITS = sorted(p.stem for p in BENCH.glob("*.jsonl"))
BASELINE = Path(__file__).resolve().parents[2] / "tests" / "schema" / "maskbench_baseline.json"


def valid_per_jsonschema(schema: Any, instance: Any) -> bool:
    try:
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        v = cls(schema, format_checker=cls.FORMAT_CHECKER)
        return bool(v.is_valid(instance))
    except Exception:  # an unresolvable remote $ref and the like: undecided
        return False


# Keywords the front-end skips (annotations), for telling a bare `$ref` apart.
ANNOTATIONS = {
    "title", "description", "default", "examples", "deprecated", "readOnly", "writeOnly",
    "$comment", "$defs", "definitions", "$anchor", "$dynamicAnchor", "$recursiveAnchor",
    "$vocabulary", "contentEncoding", "contentMediaType", "contentSchema",
}  # fmt: skip
KEYWORDS = ANNOTATIONS | {
    "$schema", "$id", "id", "$ref", "$dynamicRef", "$recursiveRef", "type", "enum", "const",
    "multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum", "maxLength",
    "minLength", "pattern", "format", "items", "prefixItems", "additionalItems", "contains",
    "minContains", "maxContains", "maxItems", "minItems", "uniqueItems", "unevaluatedItems",
    "properties", "patternProperties", "additionalProperties", "unevaluatedProperties",
    "propertyNames", "maxProperties", "minProperties", "required", "dependentRequired",
    "dependentSchemas", "dependencies", "allOf", "anyOf", "oneOf", "not", "if", "then", "else",
}  # fmt: skip


class SchemaKeyOrder:
    """The key order the front-end emits with ``property_order="schema"``: the
    schema locations that apply to a value (bare ``$ref``s replaced by their
    targets, sorted), each expanded depth-first (itself, its ``$ref``, its
    ``allOf``, the first ``anyOf``/``oneOf`` branch the value satisfies);
    ``properties`` names in first-seen order, then ``required`` ones. Only
    ``#...`` references are followed; elsewhere the order is a guess, which at
    worst leaves a valid instance rejected."""

    def __init__(self, schema: Any, valid: Callable[[Any, Any], bool]) -> None:
        self.root = schema
        self.valid = valid

    def get(self, ptr: str) -> Any:
        v = self.root
        for part in ptr.split("/")[1:]:
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(v, dict) and part in v:
                v = v[part]
            elif isinstance(v, list) and part.isdigit() and int(part) < len(v):
                v = v[int(part)]
            else:
                return None
        return v

    def target(self, ptr: str) -> str | None:
        node = self.get(ptr)
        r = node.get("$ref") if isinstance(node, dict) else None
        if not isinstance(r, str) or not r.startswith("#"):
            return None
        t = unquote(r[1:])
        return t if self.get(t) is not None else None

    def expand(self, ptrs: list[str]) -> list[str]:
        canon = set()
        for p in ptrs:
            for _ in range(32):
                node, t = self.get(p), self.target(p)
                bare = isinstance(node, dict) and all(
                    k == "$ref" or k in ANNOTATIONS or k not in KEYWORDS for k in node
                )
                if t is None or not bare:
                    break
                p = t
            canon.add(p)
        out: list[str] = []
        work = sorted(canon, reverse=True)
        while work:
            p = work.pop()
            node = self.get(p)
            if p in out or not isinstance(node, dict):
                continue
            out.append(p)
            nxt = [t] if (t := self.target(p)) is not None else []
            if isinstance(node.get("allOf"), list):
                nxt += [f"{p}/allOf/{i}" for i in range(len(node["allOf"]))]
            work.extend(reversed(nxt))
        return out

    def reorder(self, value: Any, ptrs: list[str]) -> Any:
        srcs = self.expand(ptrs)
        chosen = [
            b
            for p in srcs
            for kw in ("anyOf", "oneOf")
            if isinstance(self.get(p).get(kw), list)
            for b in [
                next(
                    (
                        f"{p}/{kw}/{i}"
                        for i, sub in enumerate(self.get(p)[kw])
                        if self.valid(sub, value)
                    ),
                    None,
                )
            ]
            if b is not None
        ]
        if chosen:
            srcs = self.expand(srcs + chosen)
        nodes = [(p, self.get(p)) for p in srcs]
        if isinstance(value, dict):
            names: list[str] = []
            for kw in ("properties", "required"):
                for _, node in nodes:
                    listed = node.get(kw)
                    for k in listed if isinstance(listed, (dict, list)) else ():
                        if isinstance(k, str) and k not in names:
                            names.append(k)
            keys = sorted(value, key=lambda k: (0, names.index(k)) if k in names else (1, 0))
            return {k: self.reorder(value[k], self.member(nodes, k)) for k in keys}
        if isinstance(value, list):
            return [self.reorder(x, self.item(nodes, i)) for i, x in enumerate(value)]
        return value

    @staticmethod
    def member(nodes: list[tuple[str, Any]], k: str) -> list[str]:
        out = []
        esc = k.replace("~", "~0").replace("/", "~1")
        for p, node in nodes:
            if isinstance(node.get("properties"), dict) and k in node["properties"]:
                out.append(f"{p}/properties/{esc}")
                continue
            patterns = node.get("patternProperties")
            pats = (
                [q for q in patterns if re.search(q, k) is not None]
                if isinstance(patterns, dict)
                else []
            )
            for q in pats:
                out.append(f"{p}/patternProperties/{q.replace('~', '~0').replace('/', '~1')}")
            if not pats and isinstance(node.get("additionalProperties"), dict):
                out.append(f"{p}/additionalProperties")
        return out

    @staticmethod
    def item(nodes: list[tuple[str, Any]], i: int) -> list[str]:
        out = []
        for p, node in nodes:
            prefix, items = node.get("prefixItems"), node.get("items")
            if isinstance(prefix, list) and i < len(prefix):
                out.append(f"{p}/prefixItems/{i}")
            elif isinstance(items, list):
                if i < len(items):
                    out.append(f"{p}/items/{i}")
                elif isinstance(node.get("additionalItems"), dict):
                    out.append(f"{p}/additionalItems")
            elif isinstance(items, dict):
                out.append(f"{p}/items")
        return out


def branch_check(schema: Any) -> Callable[[Any, Any], bool]:
    """Does a value satisfy a subschema (resolved against `schema`)?"""
    try:
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        root = cls(schema)
    except Exception:
        return lambda sub, value: False

    def check(sub: Any, value: Any) -> bool:
        try:
            return bool(root.evolve(schema=sub).is_valid(value))
        except Exception:  # an unresolvable reference and the like
            return False

    return check


def percentile(xs: list[float], q: float) -> float:
    if not xs:
        return 0.0
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("split", SPLITS)
def test_maskbench_split(split: str, byte_vocab: TokenizerInfo) -> None:
    # split("\n"): splitlines() would also break at U+2028 inside strings.
    lines = (BENCH / f"{split}.jsonl").read_text(encoding="utf-8").split("\n")
    n = compiled = 0
    valid = valid_ok = invalid = invalid_acc = invalid_acc_jsonschema = unsatisfiable = 0
    times: list[float] = []
    bad: list[str] = []
    for line in lines:
        if not line.strip():
            continue
        row = json.loads(line)
        n += 1
        schema = row["schema"]
        if os.environ.get("CORRAL_TRACE"):
            print(row.get("id"), flush=True)
        t0 = time.perf_counter()
        try:
            # A compiler per schema: its cache would otherwise keep every grammar.
            g = GrammarCompiler(byte_vocab).compile_json_schema(
                json.dumps(schema), strict_mode=False
            )
        except UnsupportedSchemaError:
            continue
        except GrammarError as e:
            # A schema no value satisfies (e.g. a oneOf whose branches all hold
            # under `required`) is an error, not a bug, while no test calls an
            # instance valid.
            if "accepts no value" in str(e) and not any(t["valid"] for t in row["tests"]):
                unsatisfiable += 1
                continue
            bad.append(f"{row.get('id', row['description'])}: {type(e).__name__}: {e}")
            continue
        except Exception as e:  # anything else is a bug
            bad.append(f"{row.get('id', row['description'])}: {type(e).__name__}: {e}")
            continue
        times.append((time.perf_counter() - t0) * 1000)
        compiled += 1
        order = key_order(schema)
        schema_order = SchemaKeyOrder(schema, branch_check(schema))
        for t in row["tests"]:
            forms = [t["data"], reorder(t["data"], order)]
            with contextlib.suppress(re.error):  # a pattern Python's `re` cannot read
                forms.append(schema_order.reorder(t["data"], [""]))
            ok = any(
                accepts(g, json.dumps(f, ensure_ascii=a)) for f in forms for a in (True, False)
            )
            if t["valid"]:
                valid += 1
                valid_ok += ok
            else:
                invalid += 1
                if ok:
                    if valid_per_jsonschema(schema, t["data"]):
                        invalid_acc_jsonschema += 1
                    else:
                        invalid_acc += 1
                        bad.append(
                            f"{row.get('id', row['description'])}: accepted invalid "
                            f"{json.dumps(t['data'])[:200]}"
                        )
    stats = {
        "schemas": n,
        "compiled": compiled,
        "compiled_share": round(compiled / max(n, 1), 4),
        "unsatisfiable": unsatisfiable,
        "valid": valid,
        "valid_accepted": valid_ok,
        "invalid": invalid,
        "invalid_accepted": invalid_acc,
        "invalid_accepted_but_valid_per_jsonschema": invalid_acc_jsonschema,
        "compile_ms_p50": round(percentile(times, 0.5), 2),
        "compile_ms_p99": round(percentile(times, 0.99), 2),
        "compile_ms_max": round(max(times, default=0.0), 2),
    }
    print(f"\n{split}: {json.dumps(stats)}")
    if os.environ.get("CORRAL_UPDATE_BASELINE"):
        base = json.loads(BASELINE.read_text()) if BASELINE.exists() else {}
        base[split] = stats
        BASELINE.write_text(json.dumps(dict(sorted(base.items())), indent=1) + "\n")
    assert not bad, "\n".join(bad[:50])
    base = json.loads(BASELINE.read_text())
    assert split in base, f"{split} missing from {BASELINE}"
    assert stats["compiled_share"] >= base[split]["compiled_share"], (
        f"{split}: compiled share fell from {base[split]['compiled_share']} to "
        f"{stats['compiled_share']}"
    )
