"""The Python surface of the JSON Schema front-end: inputs (dict, JSON text,
pydantic model class), options, errors with JSON pointers, lenient warnings,
`corral check-schema`, and random walks under the mask whose outputs must
validate with `jsonschema`."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pydantic
import pytest

import corral
from conftest import BYTE_EOS, CORPORA, allowed_ids
from corral import (
    GrammarCompiler,
    GrammarError,
    GrammarMatcher,
    SchemaCoverageWarning,
    UnsupportedSchemaError,
)


def accepts(compiled: Any, text: str) -> bool:
    m = GrammarMatcher(compiled)
    return bool(m.accept_string(text.encode()) and m.accept_token(BYTE_EOS) and m.is_terminated())


class Address(pydantic.BaseModel):
    street: str
    zip: str | None = None


class Person(pydantic.BaseModel):
    name: str
    age: int
    tags: list[str] = []
    address: Address


def test_pydantic_model_class(byte_compiler: GrammarCompiler) -> None:
    g = byte_compiler.compile_json_schema(Person)
    good = Person(name="a", age=3, tags=["x"], address=Address(street="s"))
    assert accepts(g, good.model_dump_json())
    assert accepts(g, json.dumps(good.model_dump(), indent=2))
    assert not accepts(g, '{"name": "a", "age": "3", "tags": [], "address": {"street": "s"}}')
    assert not accepts(g, '{"name": "a", "age": 3, "address": {"street": "s"}, "x": 1}')


def test_dict_and_text_inputs_agree(byte_compiler: GrammarCompiler) -> None:
    schema = {"type": "array", "items": {"enum": ["a", 1]}, "maxItems": 2}
    for g in (
        byte_compiler.compile_json_schema(schema),
        byte_compiler.compile_json_schema(json.dumps(schema)),
    ):
        assert accepts(g, '["a", 1]')
        assert not accepts(g, '["a", 1, 1]')
    with pytest.raises(TypeError):
        byte_compiler.compile_json_schema(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="property_order"):
        byte_compiler.compile_json_schema(schema, property_order="random")  # type: ignore[arg-type]


def test_layout_options(byte_compiler: GrammarCompiler) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "array"}}, "required": ["a"]}
    value = {"a": [1, {"b": [None]}, []]}
    g = byte_compiler.compile_json_schema(schema, any_whitespace=False, indent=2)
    assert accepts(g, json.dumps(value, indent=2))
    assert not accepts(g, json.dumps(value))
    g = byte_compiler.compile_json_schema(schema, any_whitespace=False)
    assert accepts(g, json.dumps(value))
    assert not accepts(g, json.dumps(value, separators=(",", ":")))
    g = byte_compiler.compile_json_schema(schema, any_whitespace=False, separators=(",", ":"))
    assert accepts(g, json.dumps(value, separators=(",", ":")))
    g = byte_compiler.compile_json_schema(schema, max_whitespace=3)
    assert accepts(g, '{\n   "a":[]}')
    assert not accepts(g, '{\n    "a":[]}')
    assert not accepts(g, ' {"a": []}')


def test_builtin_json_grammar(byte_compiler: GrammarCompiler) -> None:
    g = byte_compiler.compile_builtin_json_grammar()
    assert accepts(g, '{"a": [1, -2.5e+3, "\\u00e9", null, true, {}]}')
    assert not accepts(g, '{"a": 1,}')
    g = byte_compiler.compile_builtin_json_grammar(any_whitespace=False, indent=4)
    assert accepts(g, json.dumps({"a": [1, {"b": 2}]}, indent=4))


def test_unsupported_error_has_pointer_and_keyword(byte_compiler: GrammarCompiler) -> None:
    schema = {"properties": {"tags": {"type": "array", "uniqueItems": True}}}
    with pytest.raises(UnsupportedSchemaError) as info:
        byte_compiler.compile_json_schema(schema)
    e = info.value
    assert isinstance(e, GrammarError)
    assert e.pointer == "/properties/tags"
    assert e.keyword == "uniqueItems"
    assert 'unsupported keyword "uniqueItems" at /properties/tags' in str(e)


def test_invalid_schemas_are_grammar_errors(byte_compiler: GrammarCompiler) -> None:
    for schema, needle in [
        ({"properties": {"a": {"type": 5}}}, "/properties/a"),
        ({"$ref": "#/$defs/nope"}, "/"),
        ('{"type": ', "not valid JSON"),
        (False, "accepts no value"),
        ({"allOf": [{"type": "string"}, {"type": "integer"}]}, "accepts no value"),
    ]:
        with pytest.raises(GrammarError, match=needle) as info:
            byte_compiler.compile_json_schema(schema)
        assert not isinstance(info.value, UnsupportedSchemaError)


def test_lenient_warns_with_what_it_ignored(byte_compiler: GrammarCompiler) -> None:
    schema = {"type": "array", "items": {"type": "string"}, "uniqueItems": True}
    with pytest.warns(SchemaCoverageWarning, match="uniqueItems at /"):
        g = byte_compiler.compile_json_schema(schema, lenient=True)
    assert accepts(g, '["a", "a"]')  # uniqueness is what was skipped
    assert not accepts(g, "[1]")


def test_property_order_any(byte_compiler: GrammarCompiler) -> None:
    # Needs Expr::Permutation in the automaton.
    schema = {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "string"}, "c": {}},
        "required": ["a"],
    }
    g = byte_compiler.compile_json_schema(schema, property_order="any")
    for text in ['{"a": 1}', '{"b": "x", "a": 1}', '{"c": null, "a": 1, "b": ""}']:
        assert accepts(g, text), text
    for text in ['{"b": "x"}', '{"a": 1, "a": 2}', '{"a": 1, "d": 2}']:
        assert not accepts(g, text), text


def corral_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "corral", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_check_schema(tmp_path: Path) -> None:
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps({"type": "object", "properties": {"a": {"type": "string"}}}))
    r = corral_cli("check-schema", ok)
    assert r.returncode == 0, r.stderr
    assert "/: properties, type" in r.stdout
    assert "every keyword is enforced" in r.stdout
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"properties": {"t": {"type": "array", "uniqueItems": True}}}))
    r = corral_cli("check-schema", bad, "--no-strict")
    assert r.returncode == 1
    assert "NOT enforced" in r.stdout
    assert "/properties/t: uniqueItems" in r.stdout
    broken = tmp_path / "broken.json"
    broken.write_text('{"type": 5}')
    assert corral_cli("check-schema", broken).returncode == 2
    notjson = tmp_path / "notjson.json"
    notjson.write_text("{")
    assert corral_cli("check-schema", notjson).returncode == 2
    assert corral_cli("check-schema", tmp_path / "missing.json").returncode == 2


# ---------------------------------------------------------------------------
# random walks: every output parses and validates

WALK_SCHEMAS: list[dict[str, Any]] = [
    {"type": "integer"},
    {"type": "string", "minLength": 1, "maxLength": 4},
    {"type": "string", "pattern": "^[a-c]+x?$"},
    {"enum": ['a"b', 1, None, [1, {"k": "v"}]]},
    {"type": "array", "items": {"type": "number"}, "minItems": 1, "maxItems": 3},
    {"prefixItems": [{"type": "boolean"}, {"const": "x"}], "items": {"type": "null"}},
    {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "string", "maxLength": 3}},
        "required": ["b"],
        "additionalProperties": {"type": "boolean"},
    },
    {"anyOf": [{"type": "integer"}, {"type": "array", "items": {"type": "string"}}]},
    {"oneOf": [{"type": "null"}, {"type": "object", "properties": {"x": {"const": 1}}}]},
    {
        "$defs": {
            "node": {
                "type": "object",
                "properties": {
                    "v": {"type": "integer"},
                    "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 2},
                },
                "required": ["v"],
            }
        },
        "$ref": "#/$defs/node",
    },
    {
        "type": "object",
        "patternProperties": {"^x-": {"type": "integer"}},
        "additionalProperties": False,
    },
    {
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
            {"properties": {"b": {"enum": [1, 2]}}},
        ]
    },
    {"type": ["string", "null"], "not": {"type": "null"}},
    # Keys split by overlapping patterns, named keys inside them, the rest strings.
    {
        "type": "object",
        "properties": {"ab": {"minimum": 3}},
        "patternProperties": {"^a": {"type": "integer"}, "b$": {"maximum": 9}},
        "additionalProperties": {"type": "string", "maxLength": 2},
    },
    {
        "type": "object",
        "properties": {"id": {"type": "string"}},
        "patternProperties": {"^[a-c]{1,2}$": {"type": "boolean"}},
        "additionalProperties": {"type": "null"},
    },
    # Draft-04: `3.0` is no integer (jsonschema picks the draft from `$schema`).
    {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "type": "array",
        "items": {"type": "integer", "minimum": -3, "maximum": 40, "multipleOf": 3},
    },
]


def _leap_second_ok(s: str) -> bool:
    """RFC 3339 (and the JSON-Schema-Test-Suite) allow second 60 where the time
    is 23:59 UTC; python-jsonschema's checker knows no leap seconds."""
    m = re.fullmatch(r"(.*[Tt])?(\d\d):(\d\d):60(\.\d+)?([Zz]|([+-])(\d\d):(\d\d))", s)
    if not m:
        return False
    base = s.replace(":60", ":59", 1)
    if not jsonschema.Draft202012Validator.FORMAT_CHECKER.conforms(
        base, "date-time" if m.group(1) else "time"
    ):
        return False
    minutes = int(m.group(2)) * 60 + int(m.group(3))
    if m.group(6):
        off = int(m.group(7)) * 60 + int(m.group(8))
        minutes -= off if m.group(6) == "+" else -off
    return minutes % (24 * 60) == 23 * 60 + 59


FORMATS = jsonschema.FormatChecker()
for _name in ("date-time", "time"):
    FORMATS.checkers[_name] = (
        lambda s, _n=_name: (
            not isinstance(s, str)
            or jsonschema.Draft202012Validator.FORMAT_CHECKER.conforms(s, _n)
            or _leap_second_ok(s)
        ),
        (),
    )


def walk(
    compiled: Any, vocab_size: int, token_bytes: Any, rng: random.Random, eos: list[int]
) -> bytes | None:
    m = GrammarMatcher(compiled)
    out = bytearray()
    for _ in range(3000):
        _, ids = allowed_ids(m, vocab_size)
        assert ids.size, "dead end under the mask"
        stops = [int(i) for i in ids if int(i) in eos]
        if stops and rng.random() < 0.5:
            assert m.accept_token(stops[0])
            return bytes(out)
        choices = np.array([i for i in ids if int(i) not in eos])
        if choices.size == 0:
            assert m.accept_token(stops[0])
            return bytes(out)
        t = int(choices[rng.randrange(choices.size)])
        assert m.accept_token(t)
        out += token_bytes(t)
    return None


def maskbench_sample(n: int) -> list[dict[str, Any]]:
    rows = (CORPORA / "maskbench-dev" / "JME.jsonl").read_text(encoding="utf-8").split("\n")
    return [json.loads(r)["schema"] for r in rows[:n]]


def maskbench_mixed_sample(n: int, seed: int) -> list[Any]:
    """A fixed-seed sample of MaskBench schemas from every split (below 100 KB)."""
    rows = []
    for path in sorted((CORPORA / "maskbench-dev").glob("*.jsonl")):
        rows += [r for r in path.read_text(encoding="utf-8").split("\n") if r.strip()]
    picked = random.Random(seed).sample(rows, n)
    return [s for s in (json.loads(r)["schema"] for r in picked) if len(json.dumps(s)) < 100_000]


def check_walks(
    compiler: GrammarCompiler,
    schemas: list[Any],
    vocab_size: int,
    token_bytes: Any,
    eos: list[int],
    walks: int,
    strict_mode: bool = True,
) -> int:
    rng = random.Random(1234)
    done = 0
    for schema in schemas:
        try:
            g = compiler.compile_json_schema(schema, strict_mode=strict_mode)
        except UnsupportedSchemaError:
            continue
        except GrammarError as e:  # a schema no value satisfies; anything else fails
            if "accepts no value" not in str(e):
                raise
            continue
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        validator = cls(schema, format_checker=FORMATS)
        for _ in range(walks):
            out = walk(g, vocab_size, token_bytes, rng, eos)
            if out is None:
                continue
            value = json.loads(out.decode("utf-8"))
            errors = list(validator.iter_errors(value))
            assert not errors, f"{schema}: walk produced invalid {out!r}: {errors[0].message}"
            done += 1
    return done


def test_random_walks_byte_vocab(byte_compiler: GrammarCompiler) -> None:
    info = byte_compiler.tokenizer_info
    schemas = WALK_SCHEMAS + maskbench_sample(30)
    done = check_walks(byte_compiler, schemas, info.vocab_size, info.token_bytes, [BYTE_EOS], 4)
    assert done >= 100


@pytest.mark.parametrize("strict_mode", [False, True])
def test_random_walks_maskbench_mixed(byte_vocab: Any, strict_mode: bool) -> None:
    """Walks over schemas of every split: the sample found `\\d` matching a
    digit newer than Python's Unicode, and a draft-04 enum spelled `1.0`."""
    compiler = GrammarCompiler(byte_vocab)
    schemas = maskbench_mixed_sample(160, 7 if strict_mode else 8)
    done = check_walks(
        compiler,
        schemas,
        byte_vocab.vocab_size,
        byte_vocab.token_bytes,
        [BYTE_EOS],
        2,
        strict_mode,
    )
    assert done >= 200


def test_random_walks_qwen(qwen: Any, qwen_compiler: GrammarCompiler) -> None:
    done = check_walks(
        qwen_compiler, WALK_SCHEMAS[:3], qwen.vocab_size, lambda t: qwen.tokens[t], qwen.stop_ids, 2
    )
    assert done >= 3


def test_exports() -> None:
    assert issubclass(corral.UnsupportedSchemaError, corral.GrammarError)
    assert issubclass(corral.SchemaCoverageWarning, UserWarning)


# Keywords once refused, now exact: (schema, valid, invalid). Each schema is
# also walked at random and every output checked with jsonschema.
CONDITIONAL_SCHEMAS: list[tuple[dict[str, Any], list[Any], list[Any]]] = [
    (
        {"type": "array", "items": {"type": "integer"}, "contains": {"const": 3}},
        [[3], [1, 3, 3], [3, 2]],
        [[], [1, 2], [1.5, 3]],
    ),
    (
        {"type": "array", "contains": {"type": "string"}, "minContains": 2, "maxContains": 3},
        [["a", 1, "b"], ["a", "b", "c", None]],
        [["a"], ["a", "b", "c", "d"], [1, 2]],
    ),
    (
        {"type": "array", "contains": {"type": "boolean"}, "minContains": 0, "maxContains": 0},
        [[], [1, "a"]],
        [[True], [1, False]],
    ),
    (
        {"type": "array", "items": {"enum": ["x", "y", 1]}, "uniqueItems": True},
        [[], ["x"], [1, "y", "x"], ["y", "x"]],
        [["x", "x"], [1, 1.0], ["z"]],
    ),
    (
        {"type": "array", "items": {"type": "boolean"}, "uniqueItems": True, "minItems": 2},
        [[True, False], [False, True]],
        [[True], [True, True]],
    ),
    (
        {
            "type": "object",
            "properties": {"member": {"type": "boolean"}, "id": {"type": "string"}},
            "required": ["member"],
            "if": {"properties": {"member": {"const": True}}},
            "then": {"required": ["id"]},
            "else": {"not": {"required": ["id"]}},
        },
        [{"member": True, "id": "7"}, {"member": False}],
        [{"member": True}, {"member": False, "id": "7"}],
    ),
    (
        {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "dependentRequired": {"a": ["b"]},
        },
        [{}, {"b": 1}, {"a": 1, "b": 2}],
        [{"a": 1}],
    ),
    (
        {
            "type": "object",
            "properties": {"card": {"type": "string"}, "cvc": {"type": "integer"}},
            "dependentSchemas": {
                "card": {"required": ["cvc"], "properties": {"cvc": {"minimum": 100}}}
            },
        },
        [{}, {"cvc": 5}, {"card": "x", "cvc": 123}],
        [{"card": "x"}, {"card": "x", "cvc": 5}],
    ),
    (
        {"type": "string", "not": {"enum": ["", "none"]}},
        ["a", "nonee", "None"],
        ["", "none"],
    ),
    (
        {"type": "integer", "minimum": 0, "maximum": 9, "not": {"enum": [0, 5]}},
        [1, 4, 6, 9],
        [0, 5, 10, -1],
    ),
    (
        {"allOf": [{"enum": [1, "a", [1]]}, {"not": {"type": "string"}}]},
        [1, [1]],
        ["a", 2],
    ),
]


@pytest.mark.parametrize(("schema", "valid", "invalid"), CONDITIONAL_SCHEMAS)
def test_conditional_keywords_are_exact(
    byte_compiler: GrammarCompiler, schema: dict[str, Any], valid: list[Any], invalid: list[Any]
) -> None:
    g = byte_compiler.compile_json_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for v in valid:
        assert validator.is_valid(v), v
        assert accepts(g, json.dumps(v)), f"{schema} should accept {v}"
    for v in invalid:
        assert not validator.is_valid(v), v
        assert not accepts(g, json.dumps(v)), f"{schema} should reject {v}"
    info = byte_compiler.tokenizer_info
    done = check_walks(byte_compiler, [schema], info.vocab_size, info.token_bytes, [BYTE_EOS], 6)
    assert done >= 3


def test_inexpressible_negation_is_refused(byte_compiler: GrammarCompiler) -> None:
    # not of `items` has no expressible complement.
    schema = {"type": "array", "not": {"items": {"type": "string"}}}
    with pytest.raises(UnsupportedSchemaError) as info:
        byte_compiler.compile_json_schema(schema)
    assert (info.value.pointer, info.value.keyword) == ("/not", "items")
    # Lenient drops the whole negation and says so.
    with pytest.warns(SchemaCoverageWarning, match="items at /not"):
        g = byte_compiler.compile_json_schema(schema, lenient=True)
    assert accepts(g, '["a"]')
    # not of a pattern is its complement.
    g = byte_compiler.compile_json_schema({"type": "string", "not": {"pattern": "^a"}})
    assert accepts(g, '"ba"')
    assert not accepts(g, '"abc"')


# hypothesis-jsonschema 0.23.1 cannot draw objects with the current hypothesis
# (it calls a removed `many.more`; so also for `prefixItems`, which it does not
# know and fills with any value), so those schemas are left to the walks above.
FLAT_SCHEMAS = [s for s in WALK_SCHEMAS if "object" not in json.dumps(s) and "prefixItems" not in s]


@pytest.mark.parametrize("schema", FLAT_SCHEMAS, ids=lambda s: json.dumps(s)[:40])
def test_hypothesis_jsonschema_instances_accepted(byte_vocab: Any, schema: dict[str, Any]) -> None:
    """Instances that hypothesis-jsonschema draws from a schema (an independent
    generator) are accepted, compact and in raw spelling (`ensure_ascii=False`:
    strings under length, pattern or format constraints take raw characters
    only, see the README); unconstrained ones also with `ensure_ascii`. It
    knows drafts 4-7 only (not `prefixItems`), so its draws are first checked
    with jsonschema's 2020-12 validator."""
    from hypothesis import HealthCheck, assume, given, settings
    from hypothesis_jsonschema import from_schema

    compiled = GrammarCompiler(byte_vocab).compile_json_schema(schema, strict_mode=False)
    constrained = any(k in json.dumps(schema) for k in ("Length", "pattern", "format"))

    @settings(
        max_examples=60,
        deadline=None,
        derandomize=True,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )
    @given(from_schema(schema))
    def check(value: Any) -> None:
        assume(jsonschema.Draft202012Validator(schema).is_valid(value))
        for ascii_only in (False,) if constrained else (False, True):
            text = json.dumps(value, ensure_ascii=ascii_only, separators=(",", ":"))
            assert accepts(compiled, text), text

    check()
