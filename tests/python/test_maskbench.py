"""Real-world schemas: ``../shared/corpora/maskbench-dev/*.jsonl`` (7,993 schemas
from JSONSchemaBench / MaskBench).

Every schema compiles or raises ``UnsupportedSchemaError``: never another
exception, a hang or a crash. (``LimitExceededError`` is counted in the stats
as ``limit_exceeded`` instead of failing: a few schemas still exceed
``Limits.max_nfa_states`` through constructs other than counted repetition (not
analysed yet); the baseline records how many. A schema no value satisfies is
counted as ``unsatisfiable`` while no test instance of it is valid.) Compiled with
``strict_mode=False``, its valid instances should be accepted and its invalid
ones must be rejected (the compact ``json.dumps`` text, in the instance's key
order or sorted by first appearance in the schema, non-ASCII escaped or raw,
fed through the byte vocabulary and ended with the stop token). Some instances
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

import json
import os
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from conftest import CORPORA
from corral import (
    GrammarCompiler,
    GrammarError,
    LimitExceededError,
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
    valid = valid_ok = invalid = invalid_acc = invalid_acc_jsonschema = limit = unsatisfiable = 0
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
        except LimitExceededError:
            # Counted, not failed (see the module docstring); the baseline
            # records how many per split.
            limit += 1
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
        for t in row["tests"]:
            forms = [t["data"], reorder(t["data"], order)]
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
        "limit_exceeded": limit,
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
