"""The official JSON-Schema-Test-Suite (draft 2020-12 and its format tests).

Every schema is compiled with ``strict_mode=False`` (the specification's own
semantics). For each schema that compiles, every valid instance must be
accepted and every invalid one rejected, each serialised compactly and with
``indent=2``, fed byte by byte through the byte vocabulary and ended with the
stop token. Key order is a layout choice here: a valid instance passes if it is
accepted with its own key order or with keys sorted by their first appearance
in the schema (the order ``property_order="schema"`` produces), with
non-ASCII characters escaped or raw; an invalid one must be rejected in every
one of these spellings.

corral asserts ``format`` (draft 2020-12 makes it an annotation unless the
format-assertion vocabulary is on), so in ``format.json`` the instances the
suite calls "only an annotation by default" are expected to be rejected; the
``optional/format`` files test the assertion semantics directly.

``tests/schema/suite_baseline.json`` lists the schemas that compile. A schema in
the baseline that stops compiling fails; newly compiling ones are printed.
Regenerate the baseline with::

    CORRAL_UPDATE_BASELINE=1 python -m pytest tests/python/test_schema_suite.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from conftest import CORPORA
from corral import (
    GrammarCompiler,
    GrammarError,
    LimitExceededError,
    UnsupportedSchemaError,
)
from schema_texts import accepts, key_order, reorder

SUITE = CORPORA / "json-schema-test-suite" / "tests" / "draft2020-12"
BASELINE = Path(__file__).resolve().parents[2] / "tests" / "schema" / "suite_baseline.json"
FILES = sorted(SUITE.glob("*.json")) + sorted((SUITE / "optional" / "format").glob("*.json"))


def file_id(path: Path) -> str:
    return str(path.relative_to(SUITE))


def texts(instance: Any, order: dict[str, int]) -> list[list[str]]:
    """Per layout (compact, indent=2): the spellings in both key orders."""
    forms = [instance, reorder(instance, order)]
    # Strings constrained by a pattern or format are produced with raw
    # characters, so non-ASCII ones are tried unescaped too.
    return [
        [json.dumps(f, ensure_ascii=a) for f in forms for a in (True, False)],
        [json.dumps(f, indent=2, ensure_ascii=a) for f in forms for a in (True, False)],
    ]


def compile_status(compiler: GrammarCompiler, schema: Any) -> tuple[Any, str]:
    try:
        return compiler.compile_json_schema(schema, strict_mode=False), "ok"
    except UnsupportedSchemaError:
        return None, "unsupported"
    except LimitExceededError:
        return None, "limit"
    except GrammarError as e:
        # Invalid or unsatisfiable schemas (e.g. `false`).
        return None, f"grammar: {e}"


def load_baseline() -> dict[str, list[int]]:
    data: dict[str, list[int]] = json.loads(BASELINE.read_text())
    return data


_results: dict[str, list[int]] = {}

# Valid instances outside the sound subsets corral enforces for a format (see
# formats.rs): a leap second is accepted only as 23:59:60 in UTC; hostnames
# have no IDNA A-labels (`xn--`, any label with `--` as its 3rd-4th characters).
SUBSET_REJECTS = {
    "01:29:60+01:30",
    "23:29:60+23:30",
    "15:59:60-08:00",
    "00:29:60-23:30",
    "1998-12-31T15:59:60.123-08:00",
}


@pytest.mark.parametrize("path", FILES, ids=file_id)
def test_suite_file(path: Path, byte_compiler: GrammarCompiler) -> None:
    groups = json.loads(path.read_text())
    compiled_ids: list[int] = []
    failures: list[str] = []
    for gi, group in enumerate(groups):
        schema = group["schema"]
        compiled, _status = compile_status(byte_compiler, schema)
        if compiled is None:
            continue
        compiled_ids.append(gi)
        order = key_order(schema)
        for t in group["tests"]:
            expected = t["valid"]
            if file_id(path) == "format.json" and "only an annotation" in t["description"]:
                expected = False
            in_subset_rejects = isinstance(t["data"], str) and (
                t["data"] in SUBSET_REJECTS
                or (
                    file_id(path).endswith("/hostname.json")
                    and any(label[2:4] == "--" for label in t["data"].split("."))
                )
            )
            if in_subset_rejects and file_id(path).startswith("optional/format/"):
                expected = False
            for layout in texts(t["data"], order):
                got = any(accepts(compiled, s) for s in layout)
                if got != expected:
                    verdict = "rejected valid" if expected else "accepted invalid"
                    failures.append(
                        f"#{gi} {group['description']!r} / {t['description']!r}: "
                        f"{verdict} {layout[0]!r}"
                    )
    fid = file_id(path)
    _results[fid] = compiled_ids
    if os.environ.get("CORRAL_UPDATE_BASELINE"):
        base = load_baseline() if BASELINE.exists() else {}
        base[fid] = compiled_ids
        BASELINE.write_text(json.dumps(dict(sorted(base.items())), indent=1) + "\n")
    baseline = load_baseline().get(fid, [])
    lost = sorted(set(baseline) - set(compiled_ids))
    new = sorted(set(compiled_ids) - set(baseline))
    if new:
        print(f"{fid}: schemas {new} compile now; update tests/schema/suite_baseline.json")
    assert not failures, "\n".join(failures)
    assert not lost, f"{fid}: schemas {lost} in the baseline no longer compile"


def test_baseline_lists_only_suite_files() -> None:
    names = {file_id(p) for p in FILES}
    assert set(load_baseline()) <= names


def test_suite_compiles_a_real_share() -> None:
    base = load_baseline()
    total = sum(len(json.loads(p.read_text())) for p in FILES)
    compiled = sum(len(v) for v in base.values())
    print(f"JSON-Schema-Test-Suite: {compiled}/{total} schemas compile")
    assert compiled >= total // 3
